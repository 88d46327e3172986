/**
 * Core NATS with instrumentNats (bindings/nats/), in process, against real nats-servers: what a
 * publish carries and records (the caller's headers kept byte for byte and its headers object
 * unchanged), callback and iterator subscriptions (the context current in a callback, handed on
 * in a for await), queue groups and wildcards (each message's own subject), request/reply (the
 * reply hop not recorded, the requester's context left as it was), a server without header
 * support and a message the header would push past max_payload (sent unchanged, still counted),
 * the undo, DSM off, and a connection instrumented twice.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { connect, headers as natsHeaders, type Msg, type NatsConnection } from 'nats'
import { contextOf, createDataStreams, decodePathwayContext, instrumentNats, type DataStreams } from '../bindings/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startNats, type NatsPeer } from './peers/nats.js'
import { ENV, expectedHash, pointsOf, waitForPoint } from './fixtures/aws/pathways.js'

const KEY = 'dd-pathway-ctx-base64'
const out = (subject: string) => ['direction:out', `topic:${subject}`, 'type:nats']
const inTags = (subject: string, group?: string) => (group === undefined ? ['direction:in', `topic:${subject}`, 'type:nats'] : ['direction:in', `group:${group}`, `topic:${subject}`, 'type:nats'])

describe('NATS core', () => {
  let nats: NatsPeer
  let bare: NatsPeer
  let agent: TestAgent
  const connections: NatsConnection[] = []
  const dsms: DataStreams[] = []

  before(async () => {
    ;[nats, bare, agent] = await Promise.all([startNats(), startNats({ config: { no_header_support: true, max_payload: 2048 } }), startAgent()])
  })
  after(async () => {
    await Promise.all(connections.map((nc) => nc.close()))
    await Promise.all(dsms.map((d) => d.shutdown()))
    await Promise.all([nats.stop(), bare.stop(), agent.close()])
  })

  /** A DataStreams of its own service, and a connection instrumented with it. */
  async function instrumented(service: string, servers = nats.servers): Promise<{ dsm: DataStreams; nc: NatsConnection; undo: () => void }> {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const nc = await connect({ servers })
    dsms.push(dsm)
    connections.push(nc)
    return { dsm, nc, undo: instrumentNats(nc, dsm) }
  }
  const plain = async (servers = nats.servers) => {
    const nc = await connect({ servers })
    connections.push(nc)
    return nc
  }
  const received = (nc: NatsConnection, subject: string, n: number): Promise<Msg[]> =>
    new Promise((resolve) => {
      const msgs: Msg[] = []
      nc.subscribe(subject, { max: n, callback: (_err, m) => msgs.push(m) === n && resolve(msgs) })
    })

  test('a publish carries its context in a header, beside the caller\'s headers, which stay as they were', async () => {
    const { dsm, nc } = await instrumented('nats-publish')
    const watcher = await plain()
    const got = received(watcher, 'invoices', 2)
    await watcher.flush()
    const h = natsHeaders()
    h.append('x-user', 'u1')
    h.append('x-user', 'u2')
    h.set('x-bytes', 'é✓')
    nc.publish('invoices', 'first')
    nc.publish('invoices', new Uint8Array([1, 2, 3]), { headers: h })
    assert.deepEqual([...h.keys()], ['x-user', 'x-bytes'], "the caller's headers object is not changed")
    const [first, second] = await got
    assert.equal(first.string(), 'first')
    assert.deepEqual([...second.data], [1, 2, 3])
    assert.deepEqual(second.headers!.values('x-user'), ['u1', 'u2'])
    assert.equal(second.headers!.get('x-bytes'), 'é✓')
    const h1 = expectedHash('nats-publish', out('invoices'), 0n)
    assert.equal(decodePathwayContext(first.headers!.get(KEY))?.hash, h1)
    assert.equal(decodePathwayContext(second.headers!.get(KEY))?.hash, h1)
    await dsm.flush()
    const point = await waitForPoint(agent, 'nats-publish', h1)
    assert.deepEqual(point.EdgeTags, out('invoices'))
  })

  test('a callback subscription: each message recorded with its parent, its context current in the callback', async () => {
    const producer = await instrumented('nats-cb-producer')
    const { dsm, nc } = await instrumented('nats-cb-consumer')
    const current: (bigint | undefined)[] = []
    const done = new Promise<void>((resolve) =>
      nc.subscribe('payments', {
        max: 2,
        callback: (_err, m) => {
          current.push(dsm.currentContext()?.hash)
          assert.equal(contextOf(m), dsm.currentContext())
          setTimeout(() => current.push(dsm.currentContext()?.hash) === 4 && resolve(), 1)
        },
      }),
    )
    await nc.flush()
    producer.nc.publish('payments', 'p1')
    producer.nc.publish('payments', 'p2')
    await done
    const h1 = expectedHash('nats-cb-producer', out('payments'), 0n)
    const h2 = expectedHash('nats-cb-consumer', inTags('payments'), h1)
    assert.deepEqual(current, [h2, h2, h2, h2], 'current in the callback and in what it started')
    assert.equal(dsm.currentContext(), undefined, 'not outside it')
    await Promise.all([producer.dsm.flush(), dsm.flush()])
    const point = await waitForPoint(agent, 'nats-cb-consumer', h2)
    assert.equal(point.ParentHash, h1)
  })

  test('queue groups and wildcards: group:<queue>, and each message under its own subject', async () => {
    const producer = await instrumented('nats-q-producer')
    const { dsm, nc } = await instrumented('nats-q-consumer')
    const subjects: string[] = []
    const done = new Promise<void>((resolve) => nc.subscribe('orders.*', { queue: 'workers', max: 3, callback: (_e, m) => subjects.push(m.subject) === 3 && resolve() }))
    await nc.flush()
    for (const region of ['eu', 'us', 'eu']) producer.nc.publish(`orders.${region}`, region)
    await done
    await Promise.all([producer.dsm.flush(), dsm.flush()])
    for (const region of ['eu', 'us']) {
      const parent = expectedHash('nats-q-producer', out(`orders.${region}`), 0n)
      const point = await waitForPoint(agent, 'nats-q-consumer', expectedHash('nats-q-consumer', inTags(`orders.${region}`, 'workers'), parent))
      assert.deepEqual(point.EdgeTags, inTags(`orders.${region}`, 'workers'))
    }
    assert.ok(!pointsOf(agent).some((p) => p.EdgeTags.some((t) => t.includes('*'))), 'never the wildcard itself')
  })

  test('an iterator subscription: a publish after `await` of the next message links to that message', async () => {
    const producer = await instrumented('nats-it-producer')
    const { dsm, nc } = await instrumented('nats-it-consumer')
    const sub = nc.subscribe('refunds', { max: 2 })
    const watcher = await plain()
    const forwarded = received(watcher, 'refunds.done', 2)
    await Promise.all([nc.flush(), watcher.flush()])
    producer.nc.publish('refunds', 'r1')
    producer.nc.publish('refunds', 'r2')
    const contexts: (bigint | undefined)[] = []
    for await (const m of sub) {
      contexts.push(contextOf(m)?.hash)
      nc.publish('refunds.done', m.data)
    }
    const h1 = expectedHash('nats-it-producer', out('refunds'), 0n)
    const h2 = expectedHash('nats-it-consumer', inTags('refunds'), h1)
    const h3 = expectedHash('nats-it-consumer', out('refunds.done'), h2)
    assert.deepEqual(contexts, [h2, h2])
    for (const m of await forwarded) assert.equal(decodePathwayContext(m.headers!.get(KEY))?.hash, h3)
    await dsm.flush()
    await waitForPoint(agent, 'nats-it-consumer', h3)
  })

  test('request/reply: the request is recorded, the reply is not, and the requester\'s context stays its own', async () => {
    const requester = await instrumented('nats-rr-requester')
    const responder = await instrumented('nats-rr-responder')
    responder.nc.subscribe('prices', { callback: (_e, m) => m.respond('42') })
    responder.nc.subscribe('stock', { callback: (_e, m) => responder.nc.publish(m.reply!, 'in stock') })
    await responder.nc.flush()
    const origin = requester.dsm.setCheckpoint(['direction:in', 'topic:origin', 'type:kafka'], null)!
    const answers = await requester.dsm.runWithContext(origin, async () => {
      const price = await requester.nc.request('prices', 'sku-1')
      const again = await requester.nc.request('prices', 'sku-2')
      const stock = await requester.nc.request('stock', 'sku-1', { timeout: 1000, noMux: true })
      assert.equal(requester.dsm.currentContext(), origin, 'a reply does not become the current context')
      return [price.string(), again.string(), stock.string(), price.headers?.get(KEY) ?? '', stock.headers?.get(KEY) ?? '']
    })
    assert.deepEqual(answers, ['42', '42', 'in stock', '', ''], 'replies carry no context')
    await Promise.all([requester.dsm.flush(), responder.dsm.flush()])
    const request = expectedHash('nats-rr-requester', out('prices'), origin.hash)
    const point = await waitForPoint(agent, 'nats-rr-requester', request)
    // Both requests hung off the same parent: one point, two messages.
    assert.equal(point.ParentHash, origin.hash)
    assert.equal(decodeSketch(point.EdgeLatency).count, 2)
    await waitForPoint(agent, 'nats-rr-responder', expectedHash('nats-rr-responder', inTags('prices'), request))
    const services = new Set(['nats-rr-requester', 'nats-rr-responder'])
    assert.ok(
      !pointsOf(agent).some((p) => services.has(p.service) && p.EdgeTags.some((t) => t.startsWith('topic:_INBOX') || t.startsWith('topic:$'))),
      'no point for an inbox or a $ subject',
    )
    const inbound = pointsOf(agent).filter((p) => p.service === 'nats-rr-requester' && p.EdgeTags.includes('direction:in') && p.EdgeTags.includes('type:nats'))
    assert.deepEqual(inbound, [], 'the requester records no consume: the pathway does not come back to it')
  })

  test('a server without header support: messages sent unchanged, still counted, one warning', async () => {
    const warnings: string[] = []
    const warn = console.warn
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '))
    try {
      const { dsm, nc } = await instrumented('nats-bare', bare.servers)
      const watcher = await plain(bare.servers)
      const got = received(watcher, 'bare', 2)
      await watcher.flush()
      nc.publish('bare', 'one')
      nc.publish('bare', 'two')
      const msgs = await got
      assert.deepEqual(
        msgs.map((m) => [m.string(), m.headers]),
        [
          ['one', undefined],
          ['two', undefined],
        ],
      )
      await dsm.flush()
      await waitForPoint(agent, 'nats-bare', expectedHash('nats-bare', out('bare'), 0n))
      assert.equal(warnings.filter((w) => w.includes('does not support headers')).length, 1, warnings.join('\n'))
    } finally {
      console.warn = warn
    }
  })

  test("a message the header would push past the server's max_payload goes without it", async () => {
    const limited = await startNats({ config: { max_payload: 2048 } })
    try {
      const { dsm, nc } = await instrumented('nats-max', limited.servers)
      const watcher = await plain(limited.servers)
      const got = received(watcher, 'big', 2)
      await watcher.flush()
      nc.publish('big', new Uint8Array(2000))
      nc.publish('big', new Uint8Array(100))
      // Too large with or without the header: nats.js's own error, and nothing recorded.
      assert.throws(() => nc.publish('big', new Uint8Array(3000)), /MAX_PAYLOAD_EXCEEDED/)
      const [big, small] = await got
      assert.equal(big.headers, undefined)
      assert.equal(big.data.length, 2000)
      assert.ok(small.headers?.get(KEY))
      await dsm.flush()
      const point = await waitForPoint(agent, 'nats-max', expectedHash('nats-max', out('big'), 0n))
      assert.equal(decodeSketch(point.EdgeLatency).count, 2, 'the two messages sent')
    } finally {
      await limited.stop()
    }
  })

  test('the undo: no header, nothing recorded, and subscriptions made before pass through', async () => {
    const { dsm, nc, undo } = await instrumented('nats-undo')
    const watcher = await plain()
    const got = received(watcher, 'after-undo', 1)
    const inside: unknown[] = []
    nc.subscribe('after-undo', { callback: () => inside.push(dsm.currentContext()) })
    await Promise.all([nc.flush(), watcher.flush()])
    undo()
    nc.publish('after-undo', 'x')
    const [m] = await got
    await nc.flush()
    assert.equal(m.headers, undefined)
    assert.deepEqual(inside, [undefined])
    await dsm.flush()
    assert.ok(!pointsOf(agent).some((p) => p.service === 'nats-undo'))
  })

  test('DSM off changes nothing; a connection instrumented twice records each message once', async () => {
    const nc = await plain()
    const publish = nc.publish
    const undoOff = instrumentNats(nc, createDataStreams({ enabled: false }))
    assert.equal(nc.publish, publish, 'DSM off: the connection is left as it was')
    undoOff()
    const { dsm, nc: twice } = await instrumented('nats-twice')
    instrumentNats(twice, dsm)
    const watcher = await plain()
    const got = received(watcher, 'twice', 1)
    await watcher.flush()
    const ctx = dsm.setCheckpoint(['direction:in', 'topic:t', 'type:kafka'], null)!
    dsm.runWithContext(ctx, () => twice.publish('twice', 'x'))
    const [m] = await got
    const hash = expectedHash('nats-twice', out('twice'), ctx.hash)
    assert.equal(decodePathwayContext(m.headers!.get(KEY))?.hash, hash)
    assert.deepEqual(m.headers!.values(KEY).length, 1)
    await dsm.flush()
    assert.equal(decodeSketch((await waitForPoint(agent, 'nats-twice', hash)).EdgeLatency).count, 1, 'one checkpoint for one publish')
  })
})
