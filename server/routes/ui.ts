/**
 * The built panel at /panel/ (under a strict Content-Security-Policy, framable only by App Station's origin) and, in development, the local
 * App Station stand-in at /dev/. Assets come from Vite's build in dist/ui.
 */
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const UI_DIST = fileURLToPath(new URL('../../dist/ui', import.meta.url))

/**
 * The panel's policy: its own scripts and styles only (the build has no inline script or style),
 * no plugins, no <base>, no form posts, framed only by App Station.
 */
export function panelContentSecurityPolicy(origin: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${origin}`,
  ].join('; ')
}

const escapeAttr = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

function loadPage(name: 'panel' | 'dev', origin: string): string | null {
  const file = join(UI_DIST, name, 'index.html')
  if (!existsSync(file)) return null
  const html = readFileSync(file, 'utf8')
  return html.replace('<head>', `<head>\n    <meta name="appstation-origin" content="${escapeAttr(origin)}">`)
}

const notBuilt = (reply: FastifyReply) =>
  reply
    .status(503)
    .type('text/plain; charset=utf-8')
    .send('The panel has not been built yet. Run "npm run build" (npm start does this for you).')

const routes: FastifyPluginAsync = async (app) => {
  const { origin, production } = app.config
  const panel = loadPage('panel', origin)
  const panelPolicy = panelContentSecurityPolicy(origin)
  const dev = production ? null : loadPage('dev', origin)

  if (existsSync(join(UI_DIST, 'assets'))) {
    await app.register(fastifyStatic, {
      root: join(UI_DIST, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      preCompressed: true,
      immutable: true,
      maxAge: '365d',
    })
  }

  app.get('/panel', { schema: { hide: true } }, (_request, reply) => reply.redirect('/panel/'))
  app.get('/panel/', { schema: { hide: true } }, (_request, reply) => {
    if (!panel) return notBuilt(reply)
    return reply
      .header('content-security-policy', panelPolicy)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(panel)
  })

  if (!production) {
    app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/dev/'))
    app.get('/dev', { schema: { hide: true } }, (_request, reply) => reply.redirect('/dev/'))
    app.get('/dev/', { schema: { hide: true } }, (_request, reply) => {
      if (!dev) return notBuilt(reply)
      return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(dev)
    })
  }
}

export default routes
