/**
 * The yardstick for intake: a bare Fastify route in its own process that only parses the JSON
 * body and answers 202. No signature check, no validation, no database. PORT chooses the port.
 */
import Fastify from 'fastify'

const app = Fastify({ logger: false, bodyLimit: 256 * 1024 })
app.addContentTypeParser('application/cloudevents+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'))
app.post('/events', async (request, reply) => {
  const body = request.body as { id?: unknown }
  return reply.status(202).send({ status: 'accepted', id: body.id })
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.stdout.write('listening\n')
