/** Loads configuration and listens; on SIGTERM/SIGINT closes the app (and everything it owns). */
import { ConfigError, loadConfig } from './config.ts'
import { buildApp } from './app.ts'

async function main(): Promise<void> {
  let loaded
  try {
    loaded = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const { config, notes } = loaded
  const app = await buildApp({ config })
  for (const note of notes) app.log.info(note)

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error during shutdown')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
  app.log.info(`panel: ${app.listeningOrigin}/panel/${config.devHost ? `  ·  local App Station: ${app.listeningOrigin}/dev/` : ''}`)
}

main().catch((err: unknown) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
