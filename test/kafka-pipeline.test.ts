/**
 * A three-service pipeline on the librdkafka mock cluster, with real clients and explicit
 * instrumentation: A produces to `orders`; B (group b) consumes and, inside its handler, produces
 * to `enriched`; C (group c) consumes. With kafkajs on both ends, the confluent KafkaJS API on
 * both ends, both mixes, and the node-rdkafka-style API (flowing consumer in B, non-flowing in C).
 * Checked at the test Agent: the hash chain (recomputed with dd-trace's FNV-1), edge tags,
 * pathway latency >= edge latency >= 0, payload sizes, kafka_produce and kafka_commit backlogs.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { PATHWAY_KEY, decodePathwayContext } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentConfluent, instrumentKafkaJs } from '../bindings/kafka/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import {
  backlogKey,
  backlogsOf,
  clusterIdOf,
  confluent,
  consumeTags,
  createTopics,
  expectedHash,
  flushUntil,
  makeDataStreams,
  newKafka,
  newProducer,
  pointsOf,
  produceTags,
  startConsumer,
  until,
  type ClientKind,
  type ServicePoint,
} from './fixtures/kafka/setup.js'

const PATHWAY_HEADER_BYTES = PATHWAY_KEY.length + 28

/** pathway latency >= edge latency >= 0, sample by sample (compared at both ends, within the sketch's 1%). */
function assertLatencies(point: ServicePoint): void {
  const pathway = decodeSketch(point.PathwayLatency)
  const edge = decodeSketch(point.EdgeLatency)
  for (const q of [0, 1]) {
    assert.ok(edge.quantile(q) >= 0, `edge latency ${edge.quantile(q)}`)
    assert.ok(pathway.quantile(q) >= edge.quantile(q) * 0.98, `pathway ${pathway.quantile(q)} < edge ${edge.quantile(q)}`)
  }
}

function assertPayloadSize(point: ServicePoint, bytes: number, count: number): void {
  const size = decodeSketch(point.PayloadSize)
  assert.equal(size.count, count)
  assert.ok(Math.abs(size.quantile(0) - bytes) <= bytes * 0.01 && Math.abs(size.quantile(1) - bytes) <= bytes * 0.01, `size ${size.quantile(0)}..${size.quantile(1)}, expected ${bytes}`)
}


/**
 * Flushes until every point of the hash chain and every backlog has reached the Agent, then checks
 * each point's parent and latencies; returns the lookup of a service's point by hash.
 */
async function assertChainArrives(
  agent: TestAgent,
  dsms: DataStreams[],
  chain: [string, bigint, bigint][],
  expectedBacklogs: [string, string[], number][],
): Promise<(service: string, hash: bigint) => ServicePoint | undefined> {
  const point = (service: string, hash: bigint) => pointsOf(agent, service).find((pt) => pt.Hash === hash)
  await flushUntil(
    dsms,
    () =>
      chain.every(([service, hash]) => point(service, hash) !== undefined) &&
      expectedBacklogs.every(([service, tags, value]) => backlogsOf(agent, service).get(backlogKey(tags)) === value),
  ).catch((err: Error) => {
    const got = expectedBacklogs.map(([service]) => JSON.stringify([...backlogsOf(agent, service)]))
    throw new Error(`${err.message}; backlogs: ${got.join(' ')}`)
  })
  for (const [service, hash, parent] of chain) {
    const pt = point(service, hash)!
    assert.equal(pt.ParentHash, parent)
    assertLatencies(pt)
  }
  return point
}

describe('Kafka pipeline A → orders → B → enriched → C', () => {
  let peer: KafkaPeer
  let agent: TestAgent
  let clusterId: string
  const dsms: DataStreams[] = []
  const make = (service: string) => {
    const dsm = makeDataStreams(agent, service)
    dsms.push(dsm)
    return dsm
  }

  before(async () => {
    ;[peer, agent] = await Promise.all([startKafka(), startAgent()])
    clusterId = await clusterIdOf(peer.brokers)
  })
  after(async () => {
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent.close()
    await peer.stop()
  })

  const instrument = (kind: ClientKind) => (kind === 'kafkajs' ? instrumentKafkaJs : instrumentConfluent)

  const combos: [ClientKind, ClientKind][] = [
    ['kafkajs', 'kafkajs'],
    ['confluent', 'confluent'],
    ['kafkajs', 'confluent'],
    ['confluent', 'kafkajs'],
  ]
  for (const [producerKind, consumerKind] of combos) {
    test(`${producerKind} producers → ${consumerKind} consumers (KafkaJS API)`, async () => {
      const id = `${producerKind}-${consumerKind}`
      const [orders, enriched, groupB, groupC] = [`orders-${id}`, `enriched-${id}`, `b-${id}`, `c-${id}`]
      const [svcA, svcB, svcC] = [`a-${id}`, `b-${id}`, `c-${id}`]
      await createTopics(peer.brokers, [orders, enriched])
      const [dsmA, dsmB, dsmC] = [make(svcA), make(svcB), make(svcC)]
      const kafkaA = newKafka(producerKind, peer.brokers)
      const kafkaBOut = newKafka(producerKind, peer.brokers)
      const kafkaBIn = newKafka(consumerKind, peer.brokers)
      const kafkaC = newKafka(consumerKind, peer.brokers)
      const undos = [
        instrument(producerKind)(kafkaA, dsmA),
        instrument(producerKind)(kafkaBOut, dsmB),
        instrument(consumerKind)(kafkaBIn, dsmB),
        instrument(consumerKind)(kafkaC, dsmC),
      ]
      const [producerA, producerB] = await Promise.all([newProducer(producerKind, kafkaA), newProducer(producerKind, kafkaBOut)])

      // One send of three messages with one key: one partition, offsets 0..2.
      const userHeaders = { 'x-trace': 'abc', 'x-multi': ['1', '2'] }
      const messages = [1, 2, 3].map((i) => ({ key: 'k1', value: `order-${i}`, headers: userHeaders }))
      await producerA.send({ topic: orders, messages })
      // The caller's objects are untouched.
      assert.deepEqual(messages[0], { key: 'k1', value: 'order-1', headers: { 'x-trace': 'abc', 'x-multi': ['1', '2'] } })

      const seenB: { partition: number; offset: string; message: any; ctx: bigint | undefined }[] = []
      const seenC: typeof seenB = []
      const consumers = await Promise.all([
        startConsumer(consumerKind, kafkaBIn, groupB, orders, {
          eachMessage: async ({ partition, message }: any) => {
            seenB.push({ partition, offset: message.offset, message, ctx: dsmB.currentContext()?.hash })
            // sendBatch here (send for A): both paths, and the confluent sendBatch, which calls its own send, checkpoints once.
            await producerB.sendBatch({
              topicMessages: [{ topic: enriched, messages: [{ key: 'k2', value: `enriched-${message.value}`, headers: { 'x-from': 'b' } }] }],
            })
          },
        }),
        startConsumer(consumerKind, kafkaC, groupC, enriched, {
          eachMessage: async ({ partition, message }: any) => {
            seenC.push({ partition, offset: message.offset, message, ctx: dsmC.currentContext()?.hash })
          },
        }),
      ])
      await until(() => seenC.length === 3, 'C to consume 3 messages')

      const producerCluster = producerKind === 'kafkajs' ? clusterId : undefined
      const consumerCluster = consumerKind === 'kafkajs' ? clusterId : undefined
      const hA = expectedHash(svcA, produceTags(orders, producerCluster), 0n)
      const hB1 = expectedHash(svcB, consumeTags(groupB, orders, consumerCluster), hA)
      const hB2 = expectedHash(svcB, produceTags(enriched, producerCluster), hB1)
      const hC = expectedHash(svcC, consumeTags(groupC, enriched, consumerCluster), hB2)

      // What the handlers saw: user headers kept, the pathway header added, the message's context current.
      for (const { message, ctx } of seenB) {
        assert.equal(message.headers['x-trace'].toString(), 'abc')
        assert.deepEqual(message.headers['x-multi'].map(String), ['1', '2'])
        assert.equal(decodePathwayContext(message.headers[PATHWAY_KEY])?.hash, hA)
        assert.equal(ctx, hB1)
      }
      for (const { message, ctx } of seenC) {
        assert.equal(message.headers['x-from'].toString(), 'b')
        assert.equal(decodePathwayContext(message.headers[PATHWAY_KEY])?.hash, hB2)
        assert.equal(ctx, hC)
      }
      assert.deepEqual(seenB.map((s) => s.offset).sort(), ['0', '1', '2'])
      const [p, q] = [seenB[0].partition, seenC[0].partition]

      const expectedBacklogs: [string, string[], number][] = [
        [svcA, ['type:kafka_produce', `topic:${orders}`, `partition:${p}`, ...(producerCluster ? [`kafka_cluster_id:${clusterId}`] : [])], 2],
        [svcB, ['type:kafka_commit', `consumer_group:${groupB}`, `topic:${orders}`, `partition:${p}`, ...(consumerCluster ? [`kafka_cluster_id:${clusterId}`] : [])], 3],
        [svcB, ['type:kafka_produce', `topic:${enriched}`, `partition:${q}`, ...(producerCluster ? [`kafka_cluster_id:${clusterId}`] : [])], 2],
        [svcC, ['type:kafka_commit', `consumer_group:${groupC}`, `topic:${enriched}`, `partition:${q}`, ...(consumerCluster ? [`kafka_cluster_id:${clusterId}`] : [])], 3],
      ]
      const chain: [string, bigint, bigint][] = [
        [svcA, hA, 0n],
        [svcB, hB1, hA],
        [svcB, hB2, hB1],
        [svcC, hC, hB2],
      ]
      const point = await assertChainArrives(agent, [dsmA, dsmB, dsmC], chain, expectedBacklogs)
      assert.deepEqual(point(svcA, hA)!.EdgeTags, [...produceTags(orders, producerCluster)].sort())
      assert.deepEqual(point(svcB, hB1)!.EdgeTags, [...consumeTags(groupB, orders, consumerCluster)].sort())
      // key + value + headers as sent, the pathway header included; the consumer counts the same bytes.
      const ordersBytes = 2 + 7 + (7 + 3) + (7 * 2 + 2) + PATHWAY_HEADER_BYTES
      const enrichedBytes = 2 + 'enriched-order-1'.length + (6 + 1) + PATHWAY_HEADER_BYTES
      assertPayloadSize(point(svcA, hA)!, ordersBytes, 3)
      assertPayloadSize(point(svcB, hB1)!, ordersBytes, 3)
      assertPayloadSize(point(svcB, hB2)!, enrichedBytes, 3)
      assertPayloadSize(point(svcC, hC)!, enrichedBytes, 3)

      await Promise.all([...consumers.map((c) => c.disconnect()), producerA.disconnect(), producerB.disconnect()])
      for (const undo of undos) undo()
    })
  }

  test('node-rdkafka-style API: Producer and HighLevelProducer with headers arrays, flowing and non-flowing KafkaConsumer, commits', async () => {
    const [orders, enriched, groupB, groupC] = ['orders-rd', 'enriched-rd', 'b-rd', 'c-rd']
    const [svcA, svcB, svcC] = ['a-rd', 'b-rd', 'c-rd']
    await createTopics(peer.brokers, [orders, enriched])
    const [dsmA, dsmB, dsmC] = [make(svcA), make(svcB), make(svcC)]
    const bootstrap = peer.brokers.join(',')
    const newRdProducer = () => new confluent.Producer({ 'bootstrap.servers': bootstrap, dr_cb: true, 'linger.ms': 0 })
    const newRdConsumer = (group: string, extra: object = {}) =>
      new confluent.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': group, 'auto.commit.interval.ms': 100, ...extra }, { 'auto.offset.reset': 'earliest' })
    const connect = (client: any) => new Promise<void>((resolve, reject) => client.connect({}, (err: Error) => (err ? reject(err) : resolve())))

    const producerA = newRdProducer()
    // B produces with a HighLevelProducer (its produce takes headers and a callback, and ends in Producer#produce).
    const producerB = new confluent.HighLevelProducer({ 'bootstrap.servers': bootstrap, 'linger.ms': 0 })
    // B reports its commits to the application itself (offset_commit_cb): pathwise reads those events.
    const consumerB = newRdConsumer(groupB, { offset_commit_cb: true })
    const commitEventsB: unknown[] = []
    consumerB.on('offset.commit', (err: unknown, offsets: unknown) => commitEventsB.push(err ?? offsets))
    // C commits by hand, message by message; pathwise adds a silent commit callback.
    const consumerC = newRdConsumer(groupC, { 'enable.auto.commit': false })
    const undos = [
      instrumentConfluent(producerA, dsmA),
      instrumentConfluent(producerB, dsmB),
      instrumentConfluent(consumerB, dsmB),
      instrumentConfluent(consumerC, dsmC),
    ]
    await Promise.all([producerA, producerB, consumerB, consumerC].map(connect))
    producerA.setPollInterval(10)

    const reports: any[] = []
    producerA.on('delivery-report', (err: Error, report: any) => reports.push({ err, report }))
    const userHeaders = [{ 'x-trace': 'abc' }, { 'x-trace': 'def' }]
    for (let i = 1; i <= 3; i++) producerA.produce(orders, null, Buffer.from(`order-${i}`), 'k1', Date.now(), { mine: i }, userHeaders)
    assert.deepEqual(userHeaders, [{ 'x-trace': 'abc' }, { 'x-trace': 'def' }])

    const seenB: { message: any; ctx: bigint | undefined }[] = []
    const seenC: { message: any; batchCtx: bigint | undefined }[] = []
    consumerB.on('data', (message: any) => {
      seenB.push({ message, ctx: dsmB.currentContext()?.hash })
      producerB.produce(enriched, null, Buffer.from(`enriched-${message.value}`), 'k2', Date.now(), [{ 'x-from': 'b' }], (err: Error) => {
        if (err) throw err
      })
    })
    consumerB.subscribe([orders])
    consumerB.consume()
    consumerC.subscribe([enriched])
    let polling = true
    const poll = () =>
      consumerC.consume(10, (_err: Error, messages: any[]) => {
        for (const message of messages ?? []) {
          seenC.push({ message, batchCtx: dsmC.currentContext()?.hash })
          consumerC.commitMessage(message)
        }
        if (polling) setTimeout(poll, 20)
      })
    consumerC.on('data', (message: any) => {
      message.ctxSeen = dsmC.currentContext()?.hash
    })
    poll()
    await until(() => seenC.length === 3, 'C to consume 3 messages')
    polling = false

    const hA = expectedHash(svcA, produceTags(orders), 0n)
    const hB1 = expectedHash(svcB, consumeTags(groupB, orders), hA)
    const hB2 = expectedHash(svcB, produceTags(enriched), hB1)
    const hC = expectedHash(svcC, consumeTags(groupC, enriched), hB2)

    // The application's delivery reports carry its own opaques.
    await until(() => reports.length === 3, 'delivery reports')
    assert.deepEqual(reports.map((r) => r.report.opaque.mine).sort(), [1, 2, 3])
    for (const { message, ctx } of seenB) {
      assert.deepEqual(message.headers.slice(0, 2).map((h: any) => h['x-trace'].toString()), ['abc', 'def'])
      assert.equal(decodePathwayContext(message.headers[2][PATHWAY_KEY])?.hash, hA)
      assert.equal(ctx, hB1)
    }
    for (const { message, batchCtx } of seenC) {
      assert.equal(message.headers[0]['x-from'].toString(), 'b')
      assert.equal(message.ctxSeen, hC, 'the data listener runs in the message context')
      assert.equal(batchCtx, hC, 'the consume(n) callback runs in its first message context')
    }
    const [p, q] = [seenB[0].message.partition, seenC[0].message.partition]

    const expectedBacklogs: [string, string[], number][] = [
      [svcA, ['type:kafka_produce', `topic:${orders}`, `partition:${p}`], 2],
      [svcB, ['type:kafka_commit', `consumer_group:${groupB}`, `topic:${orders}`, `partition:${p}`], 3],
      [svcB, ['type:kafka_produce', `topic:${enriched}`, `partition:${q}`], 2],
      [svcC, ['type:kafka_commit', `consumer_group:${groupC}`, `topic:${enriched}`, `partition:${q}`], 3],
    ]
    const chain: [string, bigint, bigint][] = [
      [svcA, hA, 0n],
      [svcB, hB1, hA],
      [svcB, hB2, hB1],
      [svcC, hC, hB2],
    ]
    const point = await assertChainArrives(agent, [dsmA, dsmB, dsmC], chain, expectedBacklogs)
    assert.ok(commitEventsB.length > 0, "the application's own commit events still arrive")
    const ordersBytes = 2 + 7 + 2 * (7 + 3) + PATHWAY_HEADER_BYTES
    assertPayloadSize(point(svcA, hA)!, ordersBytes, 3)
    assertPayloadSize(point(svcB, hB1)!, ordersBytes, 3)

    await Promise.all(
      [consumerB, consumerC, producerA, producerB].map((c) => new Promise<void>((resolve) => c.disconnect(() => resolve()))),
    )
    for (const undo of undos) undo()
  })
})
