/**
 * JetStream with instrumentNats (bindings/nats/jetstream.ts, delivery.ts), in process, against a
 * real nats-server with JetStream: `js.publish` (its own headers, a message id, kept), pull
 * consumers of `js.consumers.get` (`consume()` as an iterator, `fetch()`, `next()`), a durable's
 * messages recorded with `group:<durable>` and its num_pending sent as a `nats_pending` backlog, an
 * ordered (ephemeral) consumer with no group and no backlog, push consumers (`js.subscribe` with a
 * deliver subject and a queue group, callback and iterator) and the legacy pull API
 * (`js.pullSubscribe`, `js.fetch`, `js.pull`).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { AckPolicy, connect, consumerOpts, createInbox, headers as natsHeaders, type JetStreamManager, type JsMsg, type NatsConnection } from 'nats'
import { contextOf, createDataStreams, decodePathwayContext, instrumentNats, type DataStreams } from '../bindings/index.js'
import { startAgent, type DecodedBacklog, type TestAgent } from './helpers/agent-server.js'
import { startNats, type NatsPeer } from './peers/nats.js'
import { ENV, expectedHash, pointsOf, waitForPoint } from './fixtures/aws/pathways.js'

const KEY = 'dd-pathway-ctx-base64'
const out = (subject: string) => ['direction:out', `topic:${subject}`, 'type:nats']
const inTags = (subject: string, group?: string) => (group === undefined ? ['direction:in', `topic:${subject}`, 'type:nats'] : ['direction:in', `group:${group}`, `topic:${subject}`, 'type:nats'])

describe('NATS JetStream', () => {
  let nats: NatsPeer
  let agent: TestAgent
  let admin: NatsConnection
  let jsm: JetStreamManager
  const connections: NatsConnection[] = []
  const dsms: DataStreams[] = []

  before(async () => {
    ;[nats, agent] = await Promise.all([startNats({ jetStream: true }), startAgent()])
    admin = await connect({ servers: nats.servers })
    jsm = await admin.jetstreamManager()
  })
  after(async () => {
    await Promise.all(connections.map((nc) => nc.close()))
    await Promise.all(dsms.map((d) => d.shutdown()))
    await admin.close()
    await Promise.all([nats.stop(), agent.close()])
  })

  async function instrumented(service: string): Promise<{ dsm: DataStreams; nc: NatsConnection }> {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const nc = await connect({ servers: nats.servers })
    instrumentNats(nc, dsm)
    dsms.push(dsm)
    connections.push(nc)
    return { dsm, nc }
  }
  /** A stream of its own, `count` messages published to it by `service`, and the hash of their produce. */
  async function filled(stream: string, count: number, service: string): Promise<bigint> {
    await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] })
    const { nc } = await instrumented(service)
    const js = nc.jetstream()
    for (let i = 0; i < count; i++) await js.publish(`${stream.toLowerCase()}.created`, `m${i}`)
    return expectedHash(service, out(`${stream.toLowerCase()}.created`), 0n)
  }
  const backlogs = (service: string): DecodedBacklog[] =>
    agent.payloads.filter((p) => p.Service === service).flatMap((p) => p.Stats.flatMap((b) => b.Backlogs.filter((x) => x.Tags.includes('type:nats_pending'))))

  test('js.publish keeps its own headers: a message id still deduplicates', async () => {
    await jsm.streams.add({ name: 'DEDUP', subjects: ['dedup.>'] })
    const { nc } = await instrumented('js-dedup')
    const js = nc.jetstream()
    const h = natsHeaders()
    h.set('x-tenant', 't1')
    const first = await js.publish('dedup.created', 'once', { msgID: 'order-1', headers: h })
    const again = await js.publish('dedup.created', 'once', { msgID: 'order-1', headers: h })
    assert.deepEqual([first.duplicate, again.duplicate, again.seq], [false, true, first.seq])
    const stored = await jsm.streams.getMessage('DEDUP', { seq: first.seq })
    assert.equal(stored.header.get('x-tenant'), 't1')
    assert.equal(stored.header.get('Nats-Msg-Id'), 'order-1')
    assert.equal(decodePathwayContext(stored.header.get(KEY))?.hash, expectedHash('js-dedup', out('dedup.created'), 0n))
  })

  test("a durable pull consumer's consume() iterator: group:<durable>, num_pending as a backlog, a publish in the loop linked", async () => {
    const produced = await filled('PULL', 4, 'js-pull-producer')
    await jsm.consumers.add('PULL', { durable_name: 'pull-worker', ack_policy: AckPolicy.Explicit })
    const { dsm, nc } = await instrumented('js-pull')
    const consumer = await nc.jetstream().consumers.get('PULL', 'pull-worker')
    const messages = await consumer.consume({ max_messages: 10 })
    const pending: number[] = []
    const contexts: (bigint | undefined)[] = []
    for await (const m of messages) {
      pending.push(m.info.pending)
      contexts.push(contextOf(m)?.hash)
      nc.publish('pull.done', m.data)
      m.ack()
      if (pending.length === 4) break
    }
    assert.deepEqual(pending, [3, 2, 1, 0])
    const consumed = expectedHash('js-pull', inTags('pull.created', 'pull-worker'), produced)
    assert.deepEqual(contexts, [consumed, consumed, consumed, consumed])
    await dsm.flush()
    await waitForPoint(agent, 'js-pull', consumed)
    await waitForPoint(agent, 'js-pull', expectedHash('js-pull', out('pull.done'), consumed))
    const backlog = backlogs('js-pull')
    assert.deepEqual(backlog.map((b) => [b.Tags, Number(b.Value)]).slice(0, 1), [[['type:nats_pending', 'consumer_group:pull-worker', 'stream:PULL'], 3]], 'the highest pending seen in the bucket')
  })

  test('fetch() and next() of a durable pull consumer', async () => {
    const produced = await filled('BATCH', 3, 'js-batch-producer')
    await jsm.consumers.add('BATCH', { durable_name: 'batcher', ack_policy: AckPolicy.Explicit })
    const { dsm, nc } = await instrumented('js-batch')
    const consumer = await nc.jetstream().consumers.get('BATCH', 'batcher')
    const fetched = await consumer.fetch({ max_messages: 2, expires: 2000 })
    const got: JsMsg[] = []
    for await (const m of fetched) got.push(m)
    const next = await consumer.next({ expires: 2000 })
    assert.ok(next !== null)
    nc.publish('batch.done', 'after next')
    for (const m of [...got, next]) m.ack()
    const consumed = expectedHash('js-batch', inTags('batch.created', 'batcher'), produced)
    assert.deepEqual([...got, next].map((m) => contextOf(m)?.hash), [consumed, consumed, consumed])
    await dsm.flush()
    await waitForPoint(agent, 'js-batch', consumed)
    await waitForPoint(agent, 'js-batch', expectedHash('js-batch', out('batch.done'), consumed))
  })

  test('an ordered (ephemeral) consumer: recorded without a group, and no pending backlog', async () => {
    const produced = await filled('ORDERED', 2, 'js-ordered-producer')
    const { dsm, nc } = await instrumented('js-ordered')
    const consumer = await nc.jetstream().consumers.get('ORDERED')
    const messages = await consumer.consume()
    let n = 0
    for await (const m of messages) if ((assert.ok(contextOf(m)), ++n === 2)) break
    await dsm.flush()
    await waitForPoint(agent, 'js-ordered', expectedHash('js-ordered', inTags('ordered.created'), produced))
    assert.deepEqual(backlogs('js-ordered'), [])
    assert.ok(!pointsOf(agent).some((p) => p.service === 'js-ordered' && p.EdgeTags.some((t) => t.startsWith('group:'))))
  })

  test('a push consumer with a queue group (js.subscribe): group:<durable>, the context current in the callback', async () => {
    const produced = await filled('PUSH', 3, 'js-push-producer')
    const { dsm, nc } = await instrumented('js-push')
    const current: (bigint | undefined)[] = []
    const opts = consumerOpts().durable('pusher').deliverTo(createInbox()).queue('pushers').ackExplicit().deliverAll()
    const done = new Promise<void>((resolve) =>
      opts.callback((err, m) => {
        if (err !== null || m === null) return
        current.push(dsm.currentContext()?.hash)
        m.ack()
        if (current.length === 3) resolve()
      }),
    )
    const sub = await nc.jetstream().subscribe('push.>', opts)
    await done
    sub.unsubscribe()
    const consumed = expectedHash('js-push', inTags('push.created', 'pusher'), produced)
    assert.deepEqual(current, [consumed, consumed, consumed])
    await dsm.flush()
    await waitForPoint(agent, 'js-push', consumed)
    assert.equal(backlogs('js-push')[0]?.Tags.join(','), 'type:nats_pending,consumer_group:pusher,stream:PUSH')
  })

  test('a push consumer iterated, and the legacy pull API (pullSubscribe, js.fetch, js.pull)', async () => {
    const produced = await filled('LEGACY', 4, 'js-legacy-producer')
    const { dsm, nc } = await instrumented('js-legacy')
    const js = nc.jetstream()
    const iterated = await js.subscribe('legacy.>', consumerOpts().durable('iterated').deliverTo(createInbox()).ackExplicit().deliverAll())
    const hashes: (bigint | undefined)[] = []
    for await (const m of iterated) {
      hashes.push(contextOf(m)?.hash)
      m.ack()
      if (hashes.length === 4) break
    }
    await jsm.consumers.add('LEGACY', { durable_name: 'legacy-pull', ack_policy: AckPolicy.Explicit })
    const fetched = js.fetch('LEGACY', 'legacy-pull', { batch: 2, expires: 2000 })
    for await (const m of fetched) (hashes.push(contextOf(m)?.hash), m.ack())
    const pulled = await js.pull('LEGACY', 'legacy-pull')
    nc.publish('legacy.done', 'after pull')
    hashes.push(contextOf(pulled)?.hash)
    pulled.ack()
    const psub = await js.pullSubscribe('legacy.>', consumerOpts().durable('legacy-pull-sub').ackExplicit().deliverAll())
    psub.pull({ batch: 1, expires: 2000 })
    for await (const m of psub) {
      hashes.push(contextOf(m)?.hash)
      m.ack()
      break
    }
    const group = (g: string) => expectedHash('js-legacy', inTags('legacy.created', g), produced)
    assert.deepEqual(hashes, [...Array(4).fill(group('iterated')), ...Array(3).fill(group('legacy-pull')), group('legacy-pull-sub')])
    await dsm.flush()
    await waitForPoint(agent, 'js-legacy', expectedHash('js-legacy', out('legacy.done'), group('legacy-pull')))
  })
})
