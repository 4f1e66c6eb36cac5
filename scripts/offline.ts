/**
 * `npm run start:offline`: the plugin against the Kit stand-in in one command, for trying
 * everything without a Kit account. The stand-in listens on 127.0.0.1:KIT_STANDIN_PORT (default
 * 8790; 0 takes any free port) with the demo key `kit_demo_key`; the server starts as `npm start`
 * would (with the local App Station, KIT_DEV_HOST=1) on PORT (default 8787), pointed at it. Unless
 * PLATFORM_EVENTS_URL is set, the events told to the platform go to the local App Station's
 * receiver (/dev/platform-events), signed with a development secret generated for this run only.
 * Both ways to connect are offered: the demo key, and Connect with Kit through the stand-in's demo
 * Kit app (KIT_OAUTH_CLIENT_ID, KIT_OAUTH_CLIENT_SECRET and PUBLIC_URL are set for this run unless
 * given), whose consent page approves at once.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { DEMO_DATA, DEMO_KEY, DEMO_OAUTH_CLIENT } from '../tests/kit-standin/demo.ts'
import { startKitStandin, type KitStandin } from '../tests/kit-standin/server.ts'

const DEFAULT_STANDIN_PORT = 8790

function standinPort(raw: string | undefined): number {
  const port = Number(raw ?? DEFAULT_STANDIN_PORT)
  if (raw?.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`KIT_STANDIN_PORT must be a port number (0 for any free port), got "${raw}"`)
    process.exit(1)
  }
  return port
}

const port = standinPort(process.env.KIT_STANDIN_PORT)
let standin: KitStandin
try {
  standin = await startKitStandin({ port, apiKeys: [DEMO_KEY], oauth: { ...DEMO_OAUTH_CLIENT, account: DEMO_KEY } })
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
  console.error(
    `Port ${port} is taken, so the Kit stand-in cannot listen there. Choose another: KIT_STANDIN_PORT=8791 npm run start:offline (0 takes any free port).`,
  )
  process.exit(1)
}
standin.seed(DEMO_KEY, DEMO_DATA)
console.log(`Kit stand-in on ${standin.url}. In the panel, connect with the API key: ${DEMO_KEY}`)
console.log(`Look inside: curl -H 'X-Kit-Api-Key: ${DEMO_KEY}' '${standin.url}/v4/subscribers?status=all'`)

/** PLATFORM_EVENTS_URL and _SECRET for the local App Station's receiver, unless the URL is set. */
function localPlatformEvents(): Record<string, string> {
  if (process.env.PLATFORM_EVENTS_URL) return {}
  if (process.env.PORT === '0') {
    console.log('PORT=0: events told to App Station are not sent (set PLATFORM_EVENTS_URL, or a fixed PORT, to send them).')
    return {}
  }
  const host = process.env.HOST || '127.0.0.1'
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT || '8787'}/dev/platform-events`
  console.log(
    `Events told to App Station go to ${url} (a development secret generated for this run signs them); see them in the local App Station.`,
  )
  return { PLATFORM_EVENTS_URL: url, PLATFORM_EVENTS_SECRET: `whsec_${randomBytes(32).toString('base64')}` }
}

/** Connect with Kit through the stand-in's demo Kit app, unless a Kit app is configured already. */
function demoKitApp(): Record<string, string> {
  if (process.env.KIT_OAUTH_CLIENT_ID) return {}
  if (process.env.PORT === '0' && !process.env.PUBLIC_URL) {
    console.log('PORT=0: Connect with Kit is off (it needs a fixed PORT, or PUBLIC_URL, for Kit to send you back to).')
    return {}
  }
  const host = process.env.HOST || '127.0.0.1'
  const publicUrl =
    process.env.PUBLIC_URL?.replace(/\/+$/, '') || `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT || '8787'}`
  standin.oauth?.registerRedirectUri(`${publicUrl}/oauth/kit/callback`)
  console.log(`Or choose Connect with Kit: the stand-in's demo Kit app (${DEMO_OAUTH_CLIENT.clientId}) approves at once.`)
  return { PUBLIC_URL: publicUrl, KIT_OAUTH_CLIENT_ID: DEMO_OAUTH_CLIENT.clientId, KIT_OAUTH_CLIENT_SECRET: DEMO_OAUTH_CLIENT.clientSecret }
}

const env = { ...process.env, KIT_DEV_HOST: '1', KIT_API_URL: standin.url, ...localPlatformEvents(), ...demoKitApp() }
const server = spawn('npm', ['start'], { stdio: 'inherit', env })
const stop = (signal: NodeJS.Signals) => server.kill(signal)
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
server.on('exit', (code) => {
  void standin.close().finally(() => process.exit(code ?? 0))
})
