/**
 * `npm run bus:publish`: publishes one signed sample member event on the event bus, as the
 * platform would, to try the bus intake locally. It reads the same configuration as the server
 * (EVENTS_SECRET, or the development secrets beside DATABASE_PATH; EVENT_BUS_*), so run it next to
 * a server started with EVENT_BUS_URL set (the server creates the stream when it is missing).
 *
 *   npm run bus:publish -- --type subscription.started --community c_demo --email ada@example.com
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { jetstream } from '@nats-io/jetstream'
import { connect, headers } from '@nats-io/transport-node'
import { Webhook } from 'standardwebhooks'
import { loadConfig } from '../server/config.ts'

const { values: args } = parseArgs({
  options: {
    type: { type: 'string', default: 'user.signed_up' },
    community: { type: 'string', default: 'c_demo' },
    member: { type: 'string', default: 'm_bus_1' },
    email: { type: 'string', default: 'ada@example.com' },
    'first-name': { type: 'string', default: 'Ada' },
    plan: { type: 'string', default: 'pro-annual' },
    level: { type: 'string', default: 'gold' },
  },
})

const { config } = loadConfig({ EVENT_BUS_URL: 'nats://127.0.0.1:4222', ...process.env })
const bus = config.eventBus
if (!bus) throw new Error('EVENT_BUS_URL is not set')

const id = `evt_bus_${randomUUID().replace(/-/g, '')}`
const type = args.type
const event = {
  specversion: '1.0',
  id,
  source: `https://appstation.example/communities/${args.community}`,
  type,
  time: new Date().toISOString(),
  communityid: args.community,
  subject: `members/${args.member}`,
  data: {
    member: { id: args.member, email: args.email, first_name: args['first-name'] },
    ...(type.startsWith('subscription.')
      ? { subscription: { id: `s_${args.member}`, plan: args.plan, status: type === 'subscription.canceled' ? 'canceled' : 'active' } }
      : {}),
    ...(type.startsWith('access.') ? { access: { level: args.level } } : {}),
  },
}
const body = JSON.stringify(event)
const h = headers()
h.set('webhook-id', id)
h.set('webhook-timestamp', String(Math.floor(Date.now() / 1000)))
h.set(
  'webhook-signature',
  new Webhook(config.eventsSecrets[0] as string).sign(id, new Date(Number(h.get('webhook-timestamp')) * 1000), body),
)

// A subject under EVENT_BUS_SUBJECT's prefix, e.g. appstation.members.c_demo.user.signed_up.
const subject = bus.subject.replace(/(\.>|\.\*)+$/, '').replace(/\*/g, args.community) + `.${args.community}.${type}`
const nc = await connect({ servers: bus.servers, ...bus.auth })
try {
  // The message id lets JetStream drop a second publish of the same event within its duplicate window.
  const ack = await jetstream(nc).publish(subject, Buffer.from(body), { headers: h, msgID: id })
  console.log(`published ${type} ${id} for ${args.community} on ${subject} (stream ${ack.stream}, sequence ${ack.seq})`)
} finally {
  await nc.close()
}
