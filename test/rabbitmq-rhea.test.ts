/**
 * rhea's wrappers in process. Where the context goes, by peer: RabbitMQ 3.10 (an application
 * property only: the session lives and the message arrives), a peer that announced itself as
 * something else (rhea's own listener, as qpid, ActiveMQ or Azure Service Bus would be: a
 * delivery annotation too, dd-trace's carrier), a peer not known yet (an application property
 * only), a listener that calls itself RabbitMQ. The receiver reads delivery annotations, then
 * application properties, then message annotations; a forwarded message carries its forwarder's
 * context; the caller's message and maps are never touched; pre-encoded messages pass as they are;
 * what AMQP 0-9-1 sends reaches AMQP 1.0 without its headers on RabbitMQ 3.10 (a new pathway).
 * Then the undo, DSM off, and the automatic mode's class wrappers beside explicit instrumentation.
 */
import assert from 'node:assert/strict'
import type { AddressInfo, Server } from 'node:net'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import amqplib from 'amqplib'
import rhea, { type Connection, type EventContext, type Message } from 'rhea'
import { PATHWAY_KEY, PathwayContext, createDataStreams, decodePathwayContext, encodePathwayContext, instrumentAmqplib, instrumentRhea, type DataStreams } from '../bindings/index.js'
import { rheaInstrumentation } from '../bindings/rabbitmq/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { ENV, consumeTags, declare, expectedHash, pointsOf, sendTags, unique } from './fixtures/rabbitmq/setup.js'

const require = createRequire(import.meta.url)
/** Reads the current context (each DataStreams of a process reads the same store). */
const observer = createDataStreams({ enabled: true, flushIntervalMs: 0, agentUrl: 'http://127.0.0.1:9' })

describe('rhea, in process', () => {
  let rabbit: RabbitMqPeer
  let agent: TestAgent
  const dsms: DataStreams[] = []
  const closers: (() => void)[] = []
  const make = (service: string) => {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    dsms.push(dsm)
    return dsm
  }
  /** A connection to RabbitMQ from a container of its own, instrumented with `dsm` if given. */
  const toRabbit = (dsm?: DataStreams) => {
    const container = rhea.create_container({ id: unique('rhea') })
    if (dsm !== undefined) instrumentRhea(container, dsm)
    const connection = container.connect({ host: rabbit.host, port: rabbit.port, username: rabbit.username, password: rabbit.password, reconnect: false })
    closers.push(() => connection.close())
    return connection
  }
  /**
   * rhea's own listener as the peer, announcing `properties` in its open frame: what it receives,
   * decoded, section by section. No pathwise on its side.
   */
  const listener = async (properties?: Record<string, string>) => {
    const received: Message[] = []
    const container = rhea.create_container({ id: unique('peer') })
    container.on('message', (context: EventContext) => void received.push(context.message as Message))
    const server: Server = container.listen({ host: '127.0.0.1', port: 0, ...(properties && { properties }) })
    await new Promise((resolve) => server.once('listening', resolve))
    closers.push(() => server.close())
    return { port: (server.address() as AddressInfo).port, received }
  }

  before(async () => {
    ;[rabbit, agent] = await Promise.all([startRabbitMq(), startAgent()])
  })
  after(async () => {
    for (const close of closers) close()
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent?.close()
    await rabbit?.stop()
  })

  test("RabbitMQ: an application property, no delivery annotation; the message arrives; the caller's message and maps untouched", async () => {
    const [a, b] = [make('rhea-rabbit-a'), make('rhea-rabbit-b')]
    const address = `/queue/${unique('rabbit')}`
    const consumer = toRabbit(b)
    const got = receive(consumer, address, 2)
    const producer = toRabbit(a)
    const properties = Object.freeze({ user: 'kept', [PATHWAY_KEY]: 'stale' })
    const message = Object.freeze({ body: 'hello', subject: 'greeting', application_properties: properties })
    let disconnected = false
    producer.on('disconnected', () => (disconnected = true))
    await sendWhenSendable(producer.open_sender(address), [message, Object.freeze({ body: 'bare' })])
    const [first, second] = (await got).map((r) => r.message)
    assert.deepEqual(message, { body: 'hello', subject: 'greeting', application_properties: { user: 'kept', [PATHWAY_KEY]: 'stale' } })
    assert.equal(first.body, 'hello')
    assert.equal(first.subject, 'greeting')
    assert.equal(first.delivery_annotations, undefined)
    assert.equal(first.application_properties?.user, 'kept')
    const sent = expectedHash('rhea-rabbit-a', sendTags(address), 0n)
    assert.equal(decodePathwayContext(first.application_properties?.[PATHWAY_KEY])?.hash, sent, 'the stale context is replaced')
    assert.equal(decodePathwayContext(second.application_properties?.[PATHWAY_KEY])?.hash, sent)
    assert.equal(second.body, 'bare')
    assert.equal(disconnected, false)
    // The receiver's checkpoint hangs off the send, and its handler ran with it.
    const received = expectedHash('rhea-rabbit-b', consumeTags(address), sent)
    assert.deepEqual((await got).map((r) => r.ctx), [received, received])
  })

  test('a peer that announced itself as something else takes the delivery annotation too; before it is known, the application property alone', async () => {
    const peer = await listener({ product: 'qpid-like' })
    const dsm = make('rhea-peer-a')
    const container = rhea.create_container({ id: unique('to-peer') })
    instrumentRhea(container, dsm)
    const connection = container.connect({ host: '127.0.0.1', port: peer.port, reconnect: false })
    closers.push(() => connection.close())
    const sender = connection.open_sender('peer-address')
    // Sent at once: the peer's open frame has not arrived.
    sender.send({ body: 'early' })
    await sendWhenSendable(sender, [{ body: 'late', delivery_annotations: { other: 'x' } }])
    await until(() => peer.received.length === 2)
    const [early, late] = peer.received
    const sent = expectedHash('rhea-peer-a', sendTags('peer-address'), 0n)
    assert.equal(early.delivery_annotations, undefined)
    assert.equal(decodePathwayContext(early.application_properties?.[PATHWAY_KEY])?.hash, sent)
    assert.equal(late.delivery_annotations?.other, 'x')
    assert.equal(decodePathwayContext(late.delivery_annotations?.[PATHWAY_KEY])?.hash, sent)
    assert.equal(late.application_properties?.[PATHWAY_KEY], late.delivery_annotations?.[PATHWAY_KEY])

    // A peer that calls itself RabbitMQ gets none.
    const rabbitLike = await listener({ product: 'RabbitMQ', version: '3.10.8' })
    const other = container.connect({ host: '127.0.0.1', port: rabbitLike.port, reconnect: false })
    closers.push(() => other.close())
    await sendWhenSendable(other.open_sender('peer-address'), [{ body: 'x' }])
    await until(() => rabbitLike.received.length === 1)
    assert.equal(rabbitLike.received[0].delivery_annotations, undefined)
    assert.ok(rabbitLike.received[0].application_properties?.[PATHWAY_KEY])
  })

  test('the receiver reads delivery annotations, then application properties, then message annotations; a forwarded message carries its forwarder’s context', async () => {
    const dsm = make('rhea-carriers')
    const q = unique('carriers')
    const consumer = toRabbit(dsm)
    const got = receive(consumer, `/queue/${q}`, 3)
    const plain = toRabbit()
    await sendWhenSendable(plain.open_sender(`/queue/${q}`), [
      { body: 'annotated', message_annotations: { [PATHWAY_KEY]: contextValue(0x1111n) } },
      { body: 'properties first', message_annotations: { [PATHWAY_KEY]: contextValue(0x2222n) }, application_properties: { [PATHWAY_KEY]: contextValue(0x3333n) } },
      { body: 'none' },
    ])
    const parents = new Map((await got).map((r) => [r.message.body as string, r.ctx]))
    const tags = consumeTags(`/queue/${q}`)
    assert.deepEqual(Object.fromEntries(parents), {
      annotated: expectedHash('rhea-carriers', tags, 0x1111n),
      'properties first': expectedHash('rhea-carriers', tags, 0x3333n),
      none: expectedHash('rhea-carriers', tags, 0n),
    })
    // Delivery annotations over application properties, on a link to a receiver of pathwise's (rhea's listener: it keeps both).
    const direct = rhea.create_container({ id: unique('direct') })
    const receiverSide = rhea.create_container({ id: unique('receiver') })
    // A listening container's connections are instrumented one by one, as they open.
    receiverSide.on('connection_open', (context: EventContext) => void instrumentRhea(context.connection, dsm))
    const seen: { body: unknown; ctx: bigint | undefined }[] = []
    receiverSide.on('message', (context: EventContext) => void seen.push({ body: context.message?.body, ctx: dsm.currentContext()?.hash }))
    const server: Server = receiverSide.listen({ host: '127.0.0.1', port: 0 })
    await new Promise((resolve) => server.once('listening', resolve))
    closers.push(() => server.close())
    const connection = direct.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, reconnect: false })
    closers.push(() => connection.close())
    await sendWhenSendable(connection.open_sender('in'), [{ body: 'both', delivery_annotations: { [PATHWAY_KEY]: contextValue(0x4444n) }, application_properties: { [PATHWAY_KEY]: contextValue(0x5555n) } }])
    await until(() => seen.length === 1)
    // A link the peer opened has no source address of its own: dd-trace's name for it, amq.topic.
    assert.deepEqual(seen, [{ body: 'both', ctx: expectedHash('rhea-carriers', consumeTags('amq.topic'), 0x4444n) }])

    // A message received and sent on as it is: the forwarder's context replaces the one it came with.
    const forwarded = receive(toRabbit(), `/queue/${q}-out`, 1)
    const forwarder = toRabbit(dsm)
    const source = `/queue/${q}-in`
    await new Promise<void>((resolve) => {
      const out = forwarder.open_sender(`/queue/${q}-out`)
      forwarder.open_receiver(source).once('message', (context: EventContext) => {
        out.send(context.message as Message)
        resolve()
      })
      void sendWhenSendable(plain.open_sender(source), [{ body: 'relay', application_properties: { [PATHWAY_KEY]: contextValue(0x6666n) } }])
    })
    const [relayed] = await forwarded
    const inHash = expectedHash('rhea-carriers', consumeTags(source), 0x6666n)
    assert.equal(decodePathwayContext(relayed.message.application_properties?.[PATHWAY_KEY])?.hash, expectedHash('rhea-carriers', sendTags(`/queue/${q}-out`), inHash))
  })

  test('a pre-encoded message (a format) goes as it is', async () => {
    const peer = await listener({ product: 'qpid-like' })
    const container = rhea.create_container({ id: unique('raw') })
    instrumentRhea(container, make('rhea-raw'))
    const connection = container.connect({ host: '127.0.0.1', port: peer.port, reconnect: false })
    closers.push(() => connection.close())
    const sender = connection.open_sender('raw')
    const encoded = rhea.message.encode({ body: 'pre-encoded' })
    await new Promise<void>((resolve) =>
      sender.once('sendable', () => {
        sender.send(encoded, undefined, 0)
        resolve()
      }),
    )
    await until(() => peer.received.length === 1)
    assert.deepEqual({ ...peer.received[0] }, { body: 'pre-encoded' })
  })

  test('AMQP 0-9-1 to AMQP 1.0 on RabbitMQ 3.10: the headers do not cross, the receiver starts a pathway', async () => {
    const dsm = make('rhea-from-091')
    const q = unique('from-091')
    await declare(rabbit.url, { queues: [q], bindings: [] })
    const got = receive(toRabbit(dsm), `/amq/queue/${q}`, 1)
    const connection = await amqplib.connect(rabbit.url)
    closers.push(() => void connection.close())
    instrumentAmqplib(connection, make('rhea-from-091-producer'))
    const channel = await connection.createChannel()
    channel.sendToQueue(q, Buffer.from('from 0-9-1'), { headers: { 'x-user': 'u' } })
    const [r] = await got
    assert.equal(r.message.application_properties, undefined)
    assert.equal(r.ctx, expectedHash('rhea-from-091', consumeTags(`/amq/queue/${q}`), 0n))
  })

  test('the undo, DSM off, and the class wrappers standing aside for an explicitly instrumented link', async () => {
    const peer = await listener({ product: 'qpid-like' })
    const dsm = make('rhea-undo')
    const container = rhea.create_container({ id: unique('undo') })
    const undo = instrumentRhea(container, dsm)
    assert.ok(Object.hasOwn(container, 'connect'))
    const before = container.connect({ host: '127.0.0.1', port: peer.port, reconnect: false })
    closers.push(() => before.close())
    const early = before.open_sender('undo')
    undo()
    assert.ok(!Object.hasOwn(container, 'connect') && !Object.hasOwn(container, 'create_connection'))
    await sendWhenSendable(early, [{ body: 'after the undo' }])
    await until(() => peer.received.length === 1)
    assert.equal(peer.received[0].application_properties, undefined)

    const off = createDataStreams({ enabled: false })
    instrumentRhea(rhea, off)
    assert.ok(!Object.hasOwn(rhea, 'connect'))

    const link = require(join(dirname(require.resolve('rhea')), 'link.js'))
    const original = { send: link.Sender.prototype.send, dispatch: link.Receiver.prototype.dispatch }
    const [auto, explicit] = [make('rhea-classes-auto'), make('rhea-classes-explicit')]
    const unpatch = rheaInstrumentation.patch(link, auto)
    try {
      const plain = rhea.create_container({ id: unique('classes') }).connect({ host: '127.0.0.1', port: peer.port, reconnect: false })
      closers.push(() => plain.close())
      const [byClass, both] = [plain.open_sender('classes'), plain.open_sender('both')]
      instrumentRhea(both, explicit)
      await sendWhenSendable(byClass, [{ body: 'class' }])
      await sendWhenSendable(both, [{ body: 'both' }])
      await until(() => peer.received.length === 3)
      const contexts = peer.received.slice(1).map((m) => decodePathwayContext(m.delivery_annotations?.[PATHWAY_KEY])?.hash)
      assert.deepEqual(contexts, [expectedHash('rhea-classes-auto', sendTags('classes'), 0n), expectedHash('rhea-classes-explicit', sendTags('both'), 0n)])
    } finally {
      unpatch()
    }
    assert.deepEqual({ send: link.Sender.prototype.send, dispatch: link.Receiver.prototype.dispatch }, original)
    assert.ok(!Object.hasOwn(link.Receiver.prototype, 'dispatch'))
    await Promise.all([auto.flush(), explicit.flush()])
    assert.deepEqual(pointsOf(agent, 'rhea-classes-explicit').length, 1)
  })
})

/** The first `n` messages on `address`, each with the hash of the context current in its handler (every DataStreams of a process shares one store). */
function receive(connection: Connection, address: string, n: number): Promise<{ message: Message; ctx: bigint | undefined }[]> {
  return new Promise((resolve) => {
    const got: { message: Message; ctx: bigint | undefined }[] = []
    connection.open_receiver(address).on('message', (context: EventContext) => {
      got.push({ message: context.message as Message, ctx: observer.currentContext()?.hash })
      if (got.length === n) resolve(got)
    })
  })
}

/** Sends the messages once the sender has credit, all of them. */
function sendWhenSendable(sender: ReturnType<Connection['open_sender']>, messages: object[]): Promise<void> {
  return new Promise((resolve) => {
    const flush = () => {
      while (messages.length > 0 && sender.sendable()) sender.send(messages.shift() as Message)
      if (messages.length === 0) resolve()
    }
    if (sender.sendable()) flush()
    sender.on('sendable', flush)
  })
}

async function until(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The carrier value of a context of this hash, as another service would have written it a moment ago. */
function contextValue(hash: bigint): string {
  const now = Date.now()
  return encodePathwayContext(new PathwayContext(Number(hash >> 32n), Number(hash & 0xffffffffn), now - 1000, now - 500))
}
