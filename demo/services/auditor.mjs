// Reads the quotes from the NATS JetStream stream QUOTES with the durable pull consumer `auditor`,
// a little slower than they come: its pending count, which the map shows as its lag, grows.
import { connect } from 'nats'
import { jitter, natsServers, running, sleep } from './env.mjs'

const nc = await connect({ servers: natsServers })
const consumer = await nc.jetstream().consumers.get('QUOTES', 'auditor')
const messages = await consumer.consume({ max_messages: 20 })
for await (const m of messages) {
  await sleep(jitter(30))
  m.ack()
  if (!running.on) break
}
await nc.drain()
