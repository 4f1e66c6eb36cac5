/**
 * `npm run start:offline`: the plugin against the Kit stand-in in one command, for trying
 * everything without a Kit account. The stand-in listens on KIT_STANDIN_PORT (default 8790) with
 * the demo key `kit_demo_key`; the server starts as `npm start` would (with the local App Station,
 * KIT_DEV_HOST=1), pointed at it.
 */
import { spawn } from 'node:child_process'
import { DEMO_DATA, DEMO_KEY } from '../tests/kit-standin/demo.ts'
import { startKitStandin } from '../tests/kit-standin/server.ts'

const standin = await startKitStandin({ port: Number(process.env.KIT_STANDIN_PORT ?? 8790), apiKeys: [DEMO_KEY] })
standin.seed(DEMO_KEY, DEMO_DATA)
console.log(`Kit stand-in on ${standin.url}. In the panel, connect with the API key: ${DEMO_KEY}`)

const server = spawn('npm', ['start'], { stdio: 'inherit', env: { ...process.env, KIT_DEV_HOST: '1', KIT_API_URL: standin.url } })
const stop = (signal: NodeJS.Signals) => server.kill(signal)
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
server.on('exit', (code) => {
  standin.close().finally(() => process.exit(code ?? 0))
})
