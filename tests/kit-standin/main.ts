/**
 * Runs the Kit stand-in by itself for local development: `npm run kit:standin`.
 * PORT (default 8790) and HOST (default 127.0.0.1) choose where it listens;
 * KIT_STANDIN_KEYS (space-separated) adds API keys next to `kit_demo_key`.
 */
import { DEMO_DATA, DEMO_KEY } from './demo.ts'
import { startKitStandin, type KitStandin } from './server.ts'

function parsePort(raw: string | undefined): number {
  const port = Number(raw ?? 8790)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${raw}"`)
  return port
}

async function main(): Promise<void> {
  const extraKeys = (process.env.KIT_STANDIN_KEYS ?? '').split(/\s+/).filter((key) => key !== '' && key !== DEMO_KEY)
  const keys = [DEMO_KEY, ...new Set(extraKeys)]
  const standin: KitStandin = await startKitStandin({
    host: process.env.HOST || '127.0.0.1',
    port: parsePort(process.env.PORT),
    apiKeys: keys,
  })
  for (const key of keys) standin.seed(key, DEMO_DATA)

  console.log(`Kit stand-in listening on ${standin.url}`)
  console.log(`API key${keys.length > 1 ? 's' : ''}: ${keys.join(' ')}`)
  console.log(`Run the plugin against it with: KIT_API_URL=${standin.url} npm start`)
  console.log(
    `Act as the owner in Kit's app, e.g.: curl -X POST -H 'X-Kit-Api-Key: ${DEMO_KEY}' '${standin.url}/_admin/subscribers/ada%40example.com/unsubscribe'`,
  )

  const shutdown = (signal: NodeJS.Signals): void => {
    console.log(`${signal} received, stopping the Kit stand-in`)
    standin.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('Kit stand-in did not close cleanly:', error)
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

main().catch((error: unknown) => {
  console.error('Kit stand-in failed to start:', error)
  process.exit(1)
})
