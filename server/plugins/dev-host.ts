/**
 * With the local App Station on (KIT_DEV_HOST=1), /dev/ and /api/ answer only requests addressed
 * to this machine's loopback names: a web page elsewhere cannot reach them through a DNS name that
 * it rebinds to 127.0.0.1, because the browser then still sends that name as `Host`. The guard
 * reads the route the router matched as well as the raw target, since the router decodes
 * percent-encoded paths (`/%64ev/…`) and reads the path out of an absolute-form target
 * (`http://name/dev/…`), whose authority must then be a loopback name too.
 */
import fp from 'fastify-plugin'
import type { AddressInfo } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { AppError } from '../lib/errors.ts'

const GUARDED = /^\/(dev|api)(\/|\?|$)/

const isGuarded = (request: FastifyRequest) => GUARDED.test(request.url) || GUARDED.test(request.routeOptions.url ?? '')

/** The authority of an absolute-form request target (`http://name:port/path`), lower case; null for origin-form. */
function targetAuthority(url: string): string | null {
  if (url.startsWith('/')) return null
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)
  return (match?.[1] ?? '').toLowerCase()
}

export default fp(
  async (app) => {
    const { host } = app.config
    const port = () => app.config.port || (app.server.address() as AddressInfo | null)?.port || 0
    const configured = host.includes(':') && !host.startsWith('[') ? `[${host.toLowerCase()}]` : host.toLowerCase()

    app.addHook('onRequest', async (request) => {
      if (!isGuarded(request)) return
      const p = port()
      const allowed = new Set([`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, `${configured}:${p}`])
      const authority = targetAuthority(request.url)
      if (allowed.has((request.headers.host ?? '').toLowerCase()) && (authority === null || allowed.has(authority))) return
      throw new AppError(
        421,
        'misdirected_request',
        `The local App Station answers only at http://127.0.0.1:${p}, http://localhost:${p} or http://[::1]:${p}; open it at one of those addresses.`,
      )
    })
  },
  { name: 'dev-host', dependencies: ['config', 'errors'] },
)
