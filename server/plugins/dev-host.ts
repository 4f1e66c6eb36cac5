/**
 * With the local App Station on (KIT_DEV_HOST=1), /dev/ and /api/ answer only requests addressed
 * to this machine's loopback names: a web page elsewhere cannot reach them through a DNS name that
 * it rebinds to 127.0.0.1, because the browser then still sends that name as `Host`.
 */
import fp from 'fastify-plugin'
import type { AddressInfo } from 'node:net'
import { AppError } from '../lib/errors.ts'

const GUARDED = /^\/(dev|api)(\/|\?|$)/

export default fp(
  async (app) => {
    const { host } = app.config
    const port = () => app.config.port || (app.server.address() as AddressInfo | null)?.port || 0
    const configured = host.includes(':') && !host.startsWith('[') ? `[${host.toLowerCase()}]` : host.toLowerCase()

    app.addHook('onRequest', async (request) => {
      if (!GUARDED.test(request.url)) return
      const p = port()
      const allowed = new Set([`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, `${configured}:${p}`])
      if (allowed.has((request.headers.host ?? '').toLowerCase())) return
      throw new AppError(
        421,
        'misdirected_request',
        `The local App Station answers only at http://127.0.0.1:${p}, http://localhost:${p} or http://[::1]:${p}; open it at one of those addresses.`,
      )
    })
  },
  { name: 'dev-host', dependencies: ['config', 'errors'] },
)
