// One configuration of case 11 (bench/cases/rabbitmq.ts) in a process of its own, plain JavaScript
// as an application runs it: amqplib (a channel publishing 100-byte messages to a queue through the
// default exchange, and a consumer of that queue on another channel of the same connection) or
// rhea (a sender to /queue/<name> and a receiver of it on one AMQP 1.0 connection). argv: the
// client, the configuration, the broker's AMQP port. `pathwise` is set up here as the README's
// explicit API does it (instrumentAmqplib on the connection, instrumentRhea on the container);
// `header` has the application add a 28-character dd-pathway-ctx-base64 header (amqplib) or
// application property (rhea) itself, no DSM: what the client spends on carrying one.
// `pathwise-auto` (-r pathwise/register) and `dd-trace` (-r dd-trace/init) are set up by
// rabbitmq.ts. Each round reports the names its first message carried (round-child.mjs).
import { createRequire } from 'node:module'
import { runChild, serveRounds } from './round-child.mjs'

const require = createRequire(import.meta.url)
const [client, config, port] = process.argv.slice(2)
const KEY = 'dd-pathway-ctx-base64'
const VALUE = 'EjXKdO8OqMfmjty4wWjmjty4wWg='
const BODY = Buffer.alloc(100, 'x')
const queue = `bench-${client}-${config}-${process.pid}`

function explicitly(name, target) {
  if (config !== 'pathwise') return
  const pathwise = require('pathwise')
  pathwise[name](target, pathwise.createDataStreams())
}

/** What a round waits for: `target` messages received; `first`, the names the round's first message carried. */
function counter() {
  const c = { received: 0, target: Infinity, reached: () => {}, first: undefined }
  c.arrived = (names) => {
    if (c.first === undefined) c.first = names
    if (++c.received >= c.target) c.reached()
  }
  c.expect = (messages) => {
    c.first = undefined
    return new Promise((resolve) => ((c.target = c.received + messages), (c.reached = resolve)))
  }
  return c
}

async function amqplib() {
  const { connect } = require('amqplib')
  const connection = await connect(`amqp://guest:guest@127.0.0.1:${port}`)
  explicitly('instrumentAmqplib', connection)
  const [publisher, consumer] = [await connection.createChannel(), await connection.createChannel()]
  await publisher.assertQueue(queue, { exclusive: true })
  const c = counter()
  await consumer.consume(queue, (m) => c.arrived(Object.keys(m.properties.headers ?? {}).sort()), { noAck: true })
  const options = () => (config === 'header' ? { headers: { [KEY]: VALUE } } : {})
  return async (messages) => {
    const done = c.expect(messages)
    for (let i = 0; i < messages; i++) {
      if (!publisher.sendToQueue(queue, BODY, options())) await new Promise((resolve) => publisher.once('drain', resolve))
    }
    await done
    return c.first
  }
}

async function rhea() {
  const container = require('rhea').create_container({ id: queue })
  explicitly('instrumentRhea', container)
  const connection = container.connect({ host: '127.0.0.1', port: Number(port), username: 'guest', password: 'guest', reconnect: false })
  const address = `/queue/${queue}`
  const c = counter()
  connection.open_receiver({ source: address, credit_window: 500 }).on('message', ({ message }) => {
    c.arrived([...Object.keys(message.application_properties ?? {}), ...Object.keys(message.delivery_annotations ?? {})].sort())
  })
  const sender = connection.open_sender(address)
  await new Promise((resolve) => sender.once('sendable', resolve))
  const message = () => (config === 'header' ? { body: BODY, application_properties: { [KEY]: VALUE } } : { body: BODY })
  return async (messages) => {
    const done = c.expect(messages)
    for (let sent = 0; sent < messages; ) {
      while (sent < messages && sender.sendable()) (sender.send(message()), sent++)
      if (sent < messages) await new Promise((resolve) => sender.once('sendable', resolve))
    }
    await done
    return c.first
  }
}

runChild(async () => serveRounds(client === 'amqplib' ? await amqplib() : await rhea()))
