/**
 * The built panel at /panel/ (under a strict Content-Security-Policy, framable only by App Station's
 * origin), its assets from Vite's build in dist/ui, and, only with KIT_DEV_HOST=1, the local App
 * Station page at /dev/ from its own build in dist/dev (`npm run build:dev`), whose files are never
 * served otherwise.
 */
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const UI_DIST = fileURLToPath(new URL('../../dist/ui', import.meta.url))
export const DEV_DIST = fileURLToPath(new URL('../../dist/dev', import.meta.url))

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

function loadPage(file: string, origin: string): string | null {
  if (!existsSync(file)) return null
  const html = readFileSync(file, 'utf8')
  return html.replace('<head>', `<head>\n    <meta name="appstation-origin" content="${escapeAttr(origin)}">`)
}

const notBuilt = (reply: FastifyReply, what: string, command: string) =>
  reply
    .status(503)
    .type('text/plain; charset=utf-8')
    .send(`${what} has not been built yet. Run "${command}" (npm start does this for you).`)

const routes: FastifyPluginAsync = async (app) => {
  const { origin, devHost } = app.config
  const panel = loadPage(join(UI_DIST, 'panel', 'index.html'), origin)
  const panelPolicy = panelContentSecurityPolicy(origin)

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
    if (!panel) return notBuilt(reply, 'The panel', 'npm run build')
    return reply
      .header('content-security-policy', panelPolicy)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(panel)
  })

  if (devHost) {
    const dev = loadPage(join(DEV_DIST, 'index.html'), origin)
    if (existsSync(join(DEV_DIST, 'assets'))) {
      await app.register(fastifyStatic, {
        root: join(DEV_DIST, 'assets'),
        prefix: '/dev/assets/',
        decorateReply: false,
        immutable: true,
        maxAge: '365d',
      })
    }
    app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/dev/'))
    app.get('/dev', { schema: { hide: true } }, (_request, reply) => reply.redirect('/dev/'))
    app.get('/dev/', { schema: { hide: true } }, (_request, reply) => {
      if (!dev) return notBuilt(reply, 'The local App Station page', 'npm run build:dev')
      return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(dev)
    })
  }
}

export default routes
