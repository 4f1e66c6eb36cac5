/**
 * `npm run start:offline`: the plugin against the Kit stand-in in one command, for trying
 * everything without a Kit account. The stand-in listens on 127.0.0.1:KIT_STANDIN_PORT (default
 * 8790; 0 takes any free port) with the demo key `kit_demo_key`; the server starts as `npm start`
 * would (with the local App Station, KIT_DEV_HOST=1) on PORT (default 8787), pointed at it.
 */
import { spawn } from 'node:child_process'
import { DEMO_DATA, DEMO_KEY } from '../tests/kit-standin/demo.ts'
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
  standin = await startKitStandin({ port, apiKeys: [DEMO_KEY] })
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

const server = spawn('npm', ['start'], { stdio: 'inherit', env: { ...process.env, KIT_DEV_HOST: '1', KIT_API_URL: standin.url } })
const stop = (signal: NodeJS.Signals) => server.kill(signal)
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
server.on('exit', (code) => {
  void standin.close().finally(() => process.exit(code ?? 0))
})
