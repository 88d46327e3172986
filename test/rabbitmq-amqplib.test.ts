/**
 * amqplib's wrappers in process, on a real RabbitMQ 3.10: the application's publish is never
 * broken (frozen and hostile header tables, a table near frame_max or amqplib's 64 KiB buffer, a
 * getter that grows the table after pathwise measured it, a body over frame_max, a closed
 * channel: the message goes as sent, and what is thrown is what amqplib throws without pathwise);
 * the context read from a message RabbitMQ converted from AMQP 1.0 (its x-amqp-1.0-* headers),
 * and a message without headers starting a pathway; `get`'s messageCount as a queue depth; the
 * undo, DSM off, and the automatic mode's class wrappers standing aside for an explicitly
 * instrumented channel; the automatic mode's version gate on amqplib's internal files.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path, { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import amqplib from 'amqplib'
import rhea from 'rhea'
import { PATHWAY_KEY, createDataStreams, decodePathwayContext, instrumentAmqplib, instrumentRhea, type DataStreams } from '../bindings/index.js'
import { amqplibPublishInstrumentation, amqplibReceiveInstrumentations, rheaInstrumentation } from '../bindings/rabbitmq/index.js'
import { appDir, run } from './helpers/app-dir.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { flushUntil } from './helpers/flush-until.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { ENV, backlogsOf, consumeTags, declare, expectedHash, pointsOf, publishTags, sendTags, unique } from './fixtures/rabbitmq/setup.js'

const require = createRequire(import.meta.url)
/** amqplib's own files, which its package exports do not list: by path, the very modules amqplib loads. */
const amqplibFile = (name: string) => require(join(dirname(require.resolve('amqplib')), 'lib', `${name}.js`))
type Channel = amqplib.Channel

describe('amqplib, in process', () => {
  let rabbit: RabbitMqPeer
  let agent: TestAgent
  const dsms: DataStreams[] = []
  const connections: amqplib.ChannelModel[] = []
  const make = (service: string) => {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    dsms.push(dsm)
    return dsm
  }
  const connect = async (query = '') => {
    const connection = await amqplib.connect(rabbit.url + query)
    connections.push(connection)
    return connection
  }
  /** A fresh queue, and the next message taken from it (by get: a consumer left behind would take the messages after). */
  const queue = async (channel: Channel) => (await channel.assertQueue(unique('q'), { durable: false, autoDelete: true })).queue
  const next = async (channel: Channel, q: string): Promise<amqplib.GetMessage> => {
    const deadline = Date.now() + 10_000
    for (;;) {
      const message = await channel.get(q, { noAck: true })
      if (message !== false) return message
      if (Date.now() > deadline) throw new Error(`nothing in ${q} within 10 s`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  before(async () => {
    ;[rabbit, agent] = await Promise.all([startRabbitMq(), startAgent()])
  })
  after(async () => {
    await Promise.allSettled(connections.map((c) => c.close()))
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent?.close()
    await rabbit?.stop()
  })

  test("frozen and hostile header tables: the caller's object untouched; what amqplib throws without pathwise, it throws with it", async () => {
    const plain = await (await connect()).createChannel()
    const connection = await connect()
    const dsm = make('amqplib-hostile')
    instrumentAmqplib(connection, dsm)
    const channel = await connection.createChannel()
    const q = await queue(channel)

    const frozen = Object.freeze({ 'x-user': 'u', nested: Object.freeze({ a: 1 }) })
    channel.sendToQueue(q, Buffer.from('frozen'), { headers: frozen })
    const got = await next(channel, q)
    assert.deepEqual(frozen, { 'x-user': 'u', nested: { a: 1 } })
    assert.ok(Object.isFrozen(frozen))
    assert.equal(got.content.toString(), 'frozen')
    assert.deepEqual({ ...got.properties.headers, [PATHWAY_KEY]: undefined }, { 'x-user': 'u', nested: { a: 1 }, [PATHWAY_KEY]: undefined })
    assert.ok(decodePathwayContext(got.properties.headers?.[PATHWAY_KEY]) !== null)

    const throwing = () => {
      throw new Error('the application’s own getter')
    }
    const hostile = [
      new Proxy({}, { ownKeys: throwing, get: throwing, getOwnPropertyDescriptor: throwing, getPrototypeOf: throwing, has: throwing }),
      Object.defineProperty({}, 'x-bad', { enumerable: true, get: throwing }),
      { 'x-symbol': Symbol('s') },
      { 'x-fn': () => 1 },
    ]
    for (const headers of hostile) {
      const without = thrown(() => plain.sendToQueue(q, Buffer.from('h'), { headers }))
      const withPathwise = thrown(() => channel.sendToQueue(q, Buffer.from('h'), { headers }))
      assert.deepEqual(withPathwise, without)
    }
    // A publish amqplib refuses after pathwise recorded it (a property of the wrong type): its own error, and a failed send counted.
    const failed = dsm.stats.failedSends
    const wrongType = { contentType: 5 as unknown as string }
    assert.deepEqual(thrown(() => channel.sendToQueue(q, Buffer.from('t'), wrongType)), thrown(() => plain.sendToQueue(q, Buffer.from('t'), wrongType)))
    assert.equal(dsm.stats.failedSends, failed + 1)
  })

  test('a header table near frame_max or the 64 KiB buffer goes without the context; a body over frame_max is split as ever', async () => {
    // frame_max 4096: a properties frame may not be larger.
    const connection = await connect('?frameMax=4096')
    const dsm = make('amqplib-frames')
    instrumentAmqplib(connection, dsm)
    const channel = await connection.createConfirmChannel()
    const q = await queue(channel)
    // 4040 fits alone (a frame of 4077 bytes), not with the context (55 more).
    const sizes = [4040, 3000, 100]
    for (const n of sizes) channel.sendToQueue(q, Buffer.from(`table ${n}`), { headers: { 'x-big': 'y'.repeat(n) } })
    const body = Buffer.alloc(1_000_000, 'b')
    channel.sendToQueue(q, body, { headers: { 'x-user': 'u' } })
    await channel.waitForConfirms()
    const got: amqplib.GetMessage[] = []
    for (let i = 0; i <= sizes.length; i++) got.push(await next(channel, q))
    assert.deepEqual(
      got.map((m) => [m.content.length, m.properties.headers?.['x-big']?.length ?? null, m.properties.headers?.[PATHWAY_KEY] !== undefined]),
      [
        ['table 4040'.length, 4040, false],
        ['table 3000'.length, 3000, true],
        ['table 100'.length, 100, true],
        [1_000_000, null, true],
      ],
    )
    assert.ok(got[3].content.equals(body))
    assert.equal(dsm.stats.contextsLeftOut, 1, 'the message without its context is counted')

    // frame_max 131072 (amqplib's default): a table just under amqplib's 64 KiB encoding buffer.
    const wide = await connect()
    const wideDsm = make('amqplib-buffer')
    instrumentAmqplib(wide, wideDsm)
    const big = await wide.createConfirmChannel()
    const q2 = await queue(big)
    big.sendToQueue(q2, Buffer.from('near 64 KiB'), { headers: { 'x-big': 'z'.repeat(65_480) } })
    await big.waitForConfirms()
    const near = await next(big, q2)
    assert.equal(near.properties.headers?.['x-big'].length, 65_480)
    assert.equal(near.properties.headers?.[PATHWAY_KEY], undefined)
    assert.equal(wideDsm.stats.contextsLeftOut, 1)
  })

  test("a table that grows after pathwise measured it (a getter): amqplib refuses it with the context, and it goes as the application sent it", async () => {
    const connection = await connect()
    const dsm = make('amqplib-growing')
    instrumentAmqplib(connection, dsm)
    const channel = await connection.createConfirmChannel()
    const q = await queue(channel)
    let reads = 0
    const headers = Object.defineProperty({}, 'x-growing', { enumerable: true, get: () => (++reads === 1 ? 'small' : 'g'.repeat(65_490)) })
    channel.sendToQueue(q, Buffer.from('grown'), { headers })
    await channel.waitForConfirms()
    const got = await next(channel, q)
    assert.equal(got.properties.headers?.['x-growing'].length, 65_490)
    assert.equal(got.properties.headers?.[PATHWAY_KEY], undefined)
    assert.equal(dsm.stats.contextsLeftOut, 1)
    // And one the table cannot take even without the context: amqplib's own error, as without pathwise.
    const plain = await (await connect()).createChannel()
    const huge = { 'x-huge': 'h'.repeat(70_000) }
    assert.deepEqual(
      thrown(() => channel.sendToQueue(q, Buffer.from('x'), { headers: huge })),
      thrown(() => plain.sendToQueue(q, Buffer.from('x'), { headers: huge })),
    )
  })

  test('a closed channel: the publish throws what amqplib throws; a channel the broker closes reports its own error', async () => {
    const connection = await connect()
    instrumentAmqplib(connection, make('amqplib-closed'))
    const plainConnection = await connect()
    for (const close of ['client', 'broker'] as const) {
      const [channel, plain] = [await connection.createChannel(), await plainConnection.createChannel()]
      const errors: string[][] = [[], []]
      channel.on('error', (e: Error) => errors[0].push(e.message.replace(/amq\.gen-\S+/, '')))
      plain.on('error', (e: Error) => errors[1].push(e.message.replace(/amq\.gen-\S+/, '')))
      if (close === 'client') {
        await Promise.all([channel.close(), plain.close()])
      } else {
        // An exchange that does not exist: the broker closes the channel (404) after the publish returned.
        const missing = unique('missing')
        assert.equal(channel.publish(missing, 'k', Buffer.from('x')), plain.publish(missing, 'k', Buffer.from('x')))
        await Promise.all([once(channel, 'close'), once(plain, 'close')])
        assert.deepEqual(errors[0].map((m) => m.replace(missing, '')), errors[1].map((m) => m.replace(missing, '')))
      }
      const [a, b] = [thrown(() => channel.sendToQueue('q', Buffer.from('x'))), thrown(() => plain.sendToQueue('q', Buffer.from('x')))]
      assert.equal(a?.name, 'IllegalOperationError')
      assert.deepEqual(a, b)
    }
  })

  test('a message from AMQP 1.0 (rhea): its context in the x-amqp-1.0-app-properties header; one without headers starts a pathway', async () => {
    const [producer, consumer] = [make('amqplib-cross-a'), make('amqplib-cross-b')]
    const container = rhea.create_container({ id: unique('cross') })
    instrumentRhea(container, producer)
    const rheaConnection = container.connect({ host: rabbit.host, port: rabbit.port, username: rabbit.username, password: rabbit.password, reconnect: false })
    const connection = await connect()
    instrumentAmqplib(connection, consumer)
    const channel = await connection.createChannel()
    const q = await queue(channel)
    const arrived = next(channel, q)
    const sender = rheaConnection.open_sender(`/amq/queue/${q}`)
    sender.once('sendable', () => sender.send({ body: 'over 1.0', application_properties: { other: 'kept' }, message_annotations: { 'x-opt-note': 'n' } }))
    const got = await arrived
    rheaConnection.close()
    const sent = expectedHash('amqplib-cross-a', sendTags(`/amq/queue/${q}`), 0n)
    assert.equal(got.properties.headers?.[PATHWAY_KEY], undefined)
    assert.match(String(got.properties.headers?.['x-amqp-1.0-app-properties']), /other/)

    // A 0-9-1 message without a header table, as a client that sends none publishes it (amqplib always sends one).
    const plain = (await (await connect()).createChannel()) as unknown as { sendMessage: (...args: unknown[]) => boolean }
    const bare = next(channel, q)
    plain.sendMessage({ exchange: '', routingKey: q, mandatory: false, immediate: false, ticket: 0 }, { headers: undefined }, Buffer.from('bare'))
    assert.equal((await bare).properties.headers, undefined)

    await flushUntil([producer, consumer], () => pointsOf(agent, 'amqplib-cross-b').length === 2)
    const byParent = new Map(pointsOf(agent, 'amqplib-cross-b').map((p) => [p.ParentHash, p]))
    assert.equal(byParent.get(sent)?.Hash, expectedHash('amqplib-cross-b', consumeTags(q), sent))
    assert.equal(byParent.get(0n)?.Hash, expectedHash('amqplib-cross-b', consumeTags(q), 0n))
  })

  test("get's messageCount (the messages left) is the queue's depth, and its callback runs with the message's context", async () => {
    const q = unique('depth')
    await declare(rabbit.url, { queues: [q], bindings: [] })
    const filler = await (await connect()).createConfirmChannel()
    for (let i = 0; i < 3; i++) filler.sendToQueue(q, Buffer.from(`m${i}`))
    await filler.waitForConfirms()
    const dsm = make('amqplib-depth')
    const connection = await new Promise<any>((resolve, reject) => require('amqplib/callback_api').connect(rabbit.url, (err: Error | null, c: unknown) => (err ? reject(err) : resolve(c))))
    const channel = await new Promise<any>((resolve, reject) => connection.createChannel((err: Error | null, ch: unknown) => (err ? reject(err) : resolve(ch))))
    instrumentAmqplib(channel, dsm)
    const ctx = await new Promise((resolve, reject) => channel.get(q, { noAck: true }, (err: Error | null) => (err ? reject(err) : resolve(dsm.currentContext()))))
    await new Promise((resolve) => connection.close(resolve))
    assert.equal((ctx as { hash: bigint } | undefined)?.hash, expectedHash('amqplib-depth', consumeTags(q), 0n))
    await flushUntil([dsm], () => backlogsOf(agent, 'amqplib-depth').size > 0)
    assert.deepEqual([...backlogsOf(agent, 'amqplib-depth')], [[['queue_type:rabbitmq', 'state:ready', `topic:${q}`, 'type:queue_depth'].join(','), 2]])
  })

  test('the undo: channels made after it are left alone, those made before pass everything through; with DSM off nothing changes', async () => {
    const dsm = make('amqplib-undo')
    const connection = await connect()
    const undo = instrumentAmqplib(connection, dsm)
    assert.ok(Object.hasOwn(connection, 'createChannel'))
    const before = await connection.createChannel()
    undo()
    assert.ok(!Object.hasOwn(connection, 'createChannel') && !Object.hasOwn(connection, 'createConfirmChannel'))
    const afterUndo = await connection.createChannel()
    assert.ok(!Object.hasOwn(afterUndo, 'sendMessage'))
    const q = await queue(before)
    before.sendToQueue(q, Buffer.from('1'))
    afterUndo.sendToQueue(q, Buffer.from('2'))
    for (const body of ['1', '2']) {
      const m = await next(before, q)
      assert.equal(m.content.toString(), body)
      assert.equal(m.properties.headers?.[PATHWAY_KEY], undefined)
    }
    await dsm.flush()
    assert.equal(pointsOf(agent, 'amqplib-undo').length, 0)

    const off = createDataStreams({ enabled: false })
    const other = await connect()
    const connectOf = amqplib.connect
    instrumentAmqplib(other, off)
    instrumentAmqplib(amqplib, off)
    assert.ok(!Object.hasOwn(other, 'createChannel'))
    assert.equal(amqplib.connect, connectOf)
  })

  test("the automatic mode's class wrappers: one checkpoint for a channel also instrumented explicitly; undone, the classes are as they were", async () => {
    const [auto, explicit] = [make('amqplib-classes-auto'), make('amqplib-classes-explicit')]
    const base = amqplibFile('channel').Channel.prototype
    const model = amqplibFile('channel_model').Channel.prototype
    const methods = () => ({ sendMessage: base.sendMessage, consume: model.consume, get: model.get, assertQueue: model.assertQueue, checkQueue: model.checkQueue })
    const original = methods()
    const undos = [
      amqplibPublishInstrumentation.patch(amqplibFile('channel'), auto),
      ...amqplibReceiveInstrumentations.map((i) => i.patch(amqplibFile(i.module.slice('amqplib/lib/'.length)), auto)),
    ]
    try {
      assert.notEqual(base.sendMessage, original.sendMessage)
      const connection = await connect()
      const [byClass, both] = [await connection.createChannel(), await connection.createChannel()]
      instrumentAmqplib(both, explicit)
      const q = await queue(byClass)
      byClass.sendToQueue(q, Buffer.from('class'))
      both.sendToQueue(q, Buffer.from('both'))
      for (const _ of [1, 2]) await next(byClass, q)
      await flushUntil([auto, explicit], () => pointsOf(agent, 'amqplib-classes-explicit').length > 0 && pointsOf(agent, 'amqplib-classes-auto').length >= 2)
      const out = (service: string) => pointsOf(agent, service).filter((p) => p.EdgeTags.includes('direction:out'))
      assert.deepEqual(out('amqplib-classes-explicit').map((p) => p.Hash), [expectedHash('amqplib-classes-explicit', publishTags('', q), 0n)])
      assert.deepEqual(out('amqplib-classes-auto').map((p) => p.Hash), [expectedHash('amqplib-classes-auto', publishTags('', q), 0n)])
    } finally {
      for (const undo of undos) undo()
    }
    assert.deepEqual(methods(), original)
    assert.ok(!Object.hasOwn(base, 'consume'), 'nothing left on the base class')
  })
})

/** What a call throws (its class name and message), or undefined. */
function thrown(fn: () => unknown): { name: string; message: string } | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    const e = err as Error
    return { name: e?.constructor?.name ?? typeof err, message: String(e?.message) }
  }
}

function once(emitter: { once(event: string, fn: () => void): unknown }, event: string): Promise<void> {
  return new Promise((resolve) => void emitter.once(event, resolve))
}

describe('the automatic mode and amqplib versions', { concurrency: true }, () => {
  // A stand-in amqplib (its lib/channel.js with a Channel class): patched inside the peer dependency's range, left alone outside.
  const CHANNEL = `class Channel { sendMessage() { return true } }\nmodule.exports = { Channel, original: Channel.prototype.sendMessage }\n`
  const APP = `const channel = require('amqplib/lib/channel')\nconsole.log(JSON.stringify({ patched: channel.Channel.prototype.sendMessage !== channel.original }))\n`
  test('the peer dependency ranges are the instrumentations\' own', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { peerDependencies: Record<string, string> }
    for (const i of [amqplibPublishInstrumentation, ...amqplibReceiveInstrumentations]) assert.equal(i.supportedVersions, manifest.peerDependencies.amqplib)
    assert.equal(rheaInstrumentation.supportedVersions, manifest.peerDependencies.rhea)
  })
  for (const [version, patched] of [['1.2.0', false], ['2.3.1', true], ['3.0.0', false]] as const) {
    test(`amqplib ${version} under -r pathwise/register: its internal classes ${patched ? 'patched' : 'left alone'}`, async () => {
      const dir = await appDir({ 'app.cjs': APP })
      try {
        const lib = path.join(dir.dir, 'node_modules/amqplib/lib')
        await mkdir(lib, { recursive: true })
        await writeFile(path.join(dir.dir, 'node_modules/amqplib/package.json'), JSON.stringify({ name: 'amqplib', version, main: 'index.js' }))
        await writeFile(path.join(dir.dir, 'node_modules/amqplib/index.js'), '')
        await writeFile(path.join(lib, 'channel.js'), CHANNEL)
        const result = await run(process.execPath, ['-r', 'pathwise/register', 'app.cjs'], {
          dir: dir.dir,
          env: { DD_DATA_STREAMS_ENABLED: 'true', DD_TRACE_AGENT_URL: 'http://127.0.0.1:9' },
        })
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop()!), { patched })
      } finally {
        await dir.remove()
      }
    })
  }
})
