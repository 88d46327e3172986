/**
 * Kafka lag without instrumented producers (bindings/kafka/watermarks.ts): a consumer instrumented
 * by pathwise, reading messages that a plain producer wrote (no pathwise, no header, no produce
 * offsets), reports each partition's high watermark (its last offset + 1) as a
 * `kafka_high_watermark` backlog, tagged as dd-trace-go tags it; kafkajs and the confluent client,
 * eachMessage and eachBatch, against the librdkafka mock cluster. The consumer's DataStreams sends
 * to a real pathwise agent, which forwards every payload to a test Agent: the payloads are checked
 * there field by field, and the pathwise agent must show the consumer's lag from the watermarks.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { createDataStreams } from '../bindings/index.js'
import { instrumentConfluent, instrumentKafkaJs } from '../bindings/kafka/index.js'
import { trackCommittedWatermarks } from '../bindings/kafka/watermarks.js'
import type { Summary } from '../agent/src/views/api.js'
import { startAgent as startPathwiseAgent, type RunningAgent } from '../agent/src/server.js'
import { startAgent, type DecodedBacklog, type TestAgent } from './helpers/agent-server.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import { ENV, clusterIdOf, confluent, createTopics, flushUntil, newKafka, newProducer, startConsumer, until, type ClientKind } from './fixtures/kafka/setup.js'

/** Messages the plain producer writes to each partition (1 and 3 get none). */
const WRITTEN: Record<number, number> = { 0: 5, 2: 3 }
/** What the consumer commits after reading everything: partition 0 stays 3 messages behind. */
const COMMITTED: Record<number, number> = { 0: 2, 2: 3 }

describe('Kafka high watermarks from consumers whose producers are not instrumented', () => {
  let peer: KafkaPeer
  let testAgent: TestAgent
  let agent: RunningAgent
  let clusterId: string
  const dsms: DataStreams[] = []

  before(async () => {
    ;[peer, testAgent] = await Promise.all([startKafka(), startAgent()])
    agent = await startPathwiseAgent({ port: 0, log: () => {}, forward: testAgent.url })
    clusterId = await clusterIdOf(peer.brokers)
  })
  after(async () => {
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent.close()
    await testAgent.close()
    await peer.stop()
  })

  const backlogs = (service: string, type: string): DecodedBacklog[] =>
    testAgent.payloads.filter((p) => p.Service === service).flatMap((p) => p.Stats.flatMap((b) => b.Backlogs.filter((x) => x.Tags.includes(`type:${type}`))))
  /** The highest value each partition reached, with the tags it came with. */
  const highest = (list: DecodedBacklog[]): Map<string, DecodedBacklog> => {
    const out = new Map<string, DecodedBacklog>()
    for (const b of list) {
      const partition = b.Tags.find((t) => t.startsWith('partition:'))!
      if (!out.has(partition) || Number(b.Value) > Number(out.get(partition)!.Value)) out.set(partition, b)
    }
    return out
  }

  /** Writes WRITTEN with a producer pathwise does not know; the high watermark expected per partition. */
  async function writePlain(topic: string): Promise<Map<number, number>> {
    await createTopics(peer.brokers, [topic])
    const plain = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
    const sent = await plain.send({
      topic,
      messages: Object.entries(WRITTEN).flatMap(([partition, n]) => Array.from({ length: n }, (_, i) => ({ partition: Number(partition), value: `${partition}-${i}` }))),
    })
    await plain.disconnect()
    // Kafka's high watermark: the offset the next message will get, the last one's + 1.
    const expected = new Map<number, number>(sent.map((r: any) => [r.partition, Number(r.baseOffset) + WRITTEN[r.partition]]))
    assert.deepEqual([...expected].sort(), [
      [0, 5],
      [2, 3],
    ])
    return expected
  }

  function dataStreams(service: string): DataStreams {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    dsms.push(dsm)
    return dsm
  }

  /** What the test Agent got from `service`, field by field, and the lag the pathwise agent shows. */
  async function check(dsm: DataStreams, name: string, expected: Map<number, number>, cid: string[]): Promise<void> {
    const [topic, group, service] = [name, name, name]
    await flushUntil([dsm], () => {
      const marks = highest(backlogs(service, 'kafka_high_watermark'))
      const commits = highest(backlogs(service, 'kafka_commit'))
      return [0, 2].every((p) => Number(marks.get(`partition:${p}`)?.Value) === expected.get(p) && Number(commits.get(`partition:${p}`)?.Value) === COMMITTED[p])
    })
    const marks = highest(backlogs(service, 'kafka_high_watermark'))
    // As dd-trace-go writes them: partition, topic, type, then the cluster id where known.
    assert.deepEqual([...marks.keys()].sort(), ['partition:0', 'partition:2'], 'a watermark of a partition that got no message')
    for (const p of [0, 2]) {
      const b = marks.get(`partition:${p}`)!
      assert.deepEqual(b.Tags, [`partition:${p}`, `topic:${topic}`, 'type:kafka_high_watermark', ...cid])
      assert.equal(b.Value, expected.get(p))
    }
    // Every watermark sent was one of these two, never above them.
    for (const b of backlogs(service, 'kafka_high_watermark')) {
      const p = Number(b.Tags[0].slice('partition:'.length))
      assert.ok(Number(b.Value) <= expected.get(p)!, `${b.Tags.join(',')} = ${b.Value}`)
    }
    assert.deepEqual(backlogs(service, 'kafka_produce'), [], 'the consumer reported produce offsets')
    assert.equal(dsm.stats.invalidInputs, 0)

    // The pathwise agent: the lag from the watermarks, with no produce offset known.
    const lag = (await (await fetch(`${agent.url}/api/lag`)).json()) as Summary
    const rows = lag.lag.filter((r) => r.group === group && r.topic === topic)
    assert.deepEqual(
      rows.map((r) => [r.partition, r.produceOffset, r.highWatermark, r.commitOffset, r.lagMessages]),
      [
        ['0', null, 5, 2, 3],
        ['2', null, 3, 3, 0],
      ],
    )
  }

  const committed = (topic: string) => Object.entries(COMMITTED).map(([partition, offset]) => ({ topic, partition: Number(partition), offset }))

  for (const kind of ['kafkajs', 'confluent'] as ClientKind[]) {
    for (const handler of ['eachMessage', 'eachBatch'] as const) {
      test(`${kind}, ${handler}: kafka_high_watermark per partition, and the lag at the agent`, async () => {
        const name = `wm-${kind}-${handler}`
        const expected = await writePlain(name)
        const dsm = dataStreams(name)
        const kafka = newKafka(kind, peer.brokers)
        const undo = kind === 'kafkajs' ? instrumentKafkaJs(kafka, dsm) : instrumentConfluent(kafka, dsm)
        let consumed = 0
        const run =
          handler === 'eachMessage'
            ? { eachMessage: async () => void consumed++ }
            : { eachBatch: async ({ batch }: any) => void (consumed += batch.messages.length) }
        const consumer = await startConsumer(kind, kafka, name, name, run, false)
        await until(() => consumed === 8, 'the 8 messages consumed')
        await commitWhenJoined(consumer, committed(name).map((c) => ({ ...c, offset: String(c.offset) })))
        await check(dsm, name, expected, kind === 'kafkajs' ? [`kafka_cluster_id:${clusterId}`] : [])
        await consumer.disconnect()
        undo()
      })
    }
  }

  test('confluent KafkaConsumer (node-rdkafka-style API): kafka_high_watermark at its commits', async () => {
    const name = 'wm-rdkafka'
    const expected = await writePlain(name)
    const dsm = dataStreams(name)
    const consumer = new confluent.KafkaConsumer(
      { 'bootstrap.servers': peer.brokers.join(','), 'group.id': name, 'enable.auto.commit': false },
      { 'auto.offset.reset': 'earliest' },
    )
    instrumentConfluent(consumer, dsm)
    await new Promise<void>((resolve, reject) => consumer.connect({}, (err: Error) => (err ? reject(err) : resolve())))
    let consumed = 0
    consumer.on('data', () => consumed++)
    consumer.subscribe([name])
    consumer.consume()
    await until(() => consumed === 8, 'the 8 messages consumed')
    consumer.commit(committed(name))
    await check(dsm, name, expected, [])
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()))
  })
})

/** Values a batch or a client may hold where a watermark is due, none of them an offset. */
const GARBAGE: unknown[] = [
  NaN,
  -1,
  -1001,
  '-1',
  '',
  '12abc',
  'x'.repeat(1 << 20),
  '9'.repeat(1 << 20),
  Infinity,
  -Infinity,
  {},
  [],
  Symbol('w'),
  null,
  undefined,
  true,
  () => 7,
]

/** A Proxy whose every trap throws. */
const trap = new Proxy(
  {},
  {
    get: () => {
      throw new Error('trap')
    },
    has: () => {
      throw new Error('trap')
    },
    getPrototypeOf: () => {
      throw new Error('trap')
    },
  },
)

/** A real kafkajs consumer (no broker needed) made by an instrumented client: its START_BATCH_PROCESS listener, caught on its way to the consumer's emitter. */
function instrumentedConsumer(dsm: DataStreams): { listener: ((e: unknown) => void) | undefined; undo: () => void } {
  const kafka = newKafka('kafkajs', ['127.0.0.1:9'])
  const listeners = new Map<string, (e: unknown) => void>()
  const create = kafka.consumer
  kafka.consumer = function (this: unknown, ...args: unknown[]) {
    const consumer = create.apply(this, args)
    const on = consumer.on
    consumer.on = function (event: string, listener: (e: unknown) => void) {
      listeners.set(event, listener)
      return on.call(this, event, listener)
    }
    return consumer
  }
  const undo = instrumentKafkaJs(kafka, dsm)
  const consumer = kafka.consumer({ groupId: 'g' })
  return { listener: listeners.get(consumer.events.START_BATCH_PROCESS), undo }
}

describe('high watermarks that are not offsets: refused and counted, never thrown; off means off', () => {
  let testAgent: TestAgent

  before(async () => {
    testAgent = await startAgent()
  })
  after(() => testAgent.close())

  const watermarksOf = (service: string) =>
    testAgent.payloads.filter((p) => p.Service === service).flatMap((p) => p.Stats.flatMap((b) => b.Backlogs.filter((x) => x.Tags.includes('type:kafka_high_watermark'))))

  test('kafkajs: START_BATCH_PROCESS with a garbage highWatermark, a throwing getter, a Proxy', async () => {
    const service = 'wm-garbage-kafkajs'
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: testAgent.url, flushIntervalMs: 0 })
    const listener = instrumentedConsumer(dsm).listener!
    assert.equal(typeof listener, 'function')

    const events: unknown[] = [
      ...GARBAGE.map((highWatermark) => ({ payload: { topic: 't', partition: 0, highWatermark } })),
      { payload: { topic: 't', partition: 0, get highWatermark() { throw new Error('getter') } } },
      { payload: { topic: 't', partition: NaN, highWatermark: '5' } },
      { payload: { topic: 'x'.repeat(1 << 20), partition: 0, highWatermark: '5' } },
      { payload: trap },
      trap,
      null,
    ]
    events.forEach((e, i) => {
      const before = dsm.stats.invalidInputs
      listener(e)
      assert.equal(dsm.stats.invalidInputs, before + 1, `event ${i} not counted`)
    })
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (topic, partition, highWatermark) => {
        listener({ payload: { topic, partition, highWatermark } })
      }),
      { numRuns: 300 },
    )
    // The one real offset among them all.
    listener({ payload: { topic: 'valid', partition: 1, highWatermark: '42' } })
    await dsm.flush()
    assert.deepEqual(
      watermarksOf(service).filter((b) => b.Tags.includes('topic:valid')).map((b) => [b.Tags, b.Value]),
      [[['partition:1', 'topic:valid', 'type:kafka_high_watermark'], 42]],
    )
    // Whatever else fast-check found acceptable went out as an int64 offset.
    for (const b of watermarksOf(service)) assert.ok(typeof b.Value === 'bigint' || (Number.isSafeInteger(b.Value) && b.Value >= 0), `${b.Tags} = ${b.Value}`)
    await dsm.shutdown()
  })

  test('off means off: no listener with DSM disabled, and none recording once undone', async () => {
    assert.equal(instrumentedConsumer(createDataStreams({ enabled: false })).listener, undefined)
    const service = 'wm-undone'
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: testAgent.url, flushIntervalMs: 0 })
    const { listener, undo } = instrumentedConsumer(dsm)
    listener!({ payload: { topic: 'before', partition: 0, highWatermark: '7' } })
    undo()
    listener!({ payload: { topic: 'after', partition: 0, highWatermark: '8' } })
    listener!({ payload: { topic: 'after', partition: 0, highWatermark: 'garbage' } })
    assert.equal(dsm.stats.invalidInputs, 0)
    await dsm.flush()
    assert.deepEqual(watermarksOf(service).map((b) => [b.Tags[1], b.Value]), [['topic:before', 7]])
    await dsm.shutdown()
  })

  test('librdkafka: a client whose getWatermarkOffsets throws or gives garbage, hostile commit reports', async () => {
    const service = 'wm-garbage-rdkafka'
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: testAgent.url, flushIntervalMs: 0 })
    const client = (answer: () => unknown) => ({ getWatermarkOffsets: answer })
    const committed = [{ topic: 't', partition: 0, offset: 3 }]
    const counted = (c: unknown, offsets: unknown = committed): number => {
      const before = dsm.stats.invalidInputs
      trackCommittedWatermarks(dsm, c, offsets)
      return dsm.stats.invalidInputs - before
    }
    // No watermark known, or none to be had: skipped, not bad input.
    for (const answer of [
      () => ({ highOffset: -1001, lowOffset: -1001 }),
      () => {
        throw new Error('Client is disconnected')
      },
      () => trap,
      () => ({ get highOffset() { throw new Error('getter') } }),
      () => undefined,
    ]) {
      assert.equal(counted(client(answer)), 0)
    }
    // Something that is not an offset: refused and counted.
    GARBAGE.filter((g) => g !== undefined && !(typeof g === 'number' && g < 0)).forEach((high, i) => assert.equal(counted(client(() => ({ highOffset: high }))), 1, `garbage ${i}`))
    // Reports and clients that cannot be read.
    for (const [c, offsets] of [
      [trap, committed],
      [client(() => ({ highOffset: 9 })), trap],
      [client(() => ({ highOffset: 9 })), Object.assign([], { length: 2 ** 32 - 1 })],
      [client(() => ({ highOffset: 9 })), [trap, null, { get topic() { throw new Error('getter') } }, { topic: 't', partition: 0, error: new Error('refused') }]],
      [null, committed],
    ] as [unknown, unknown][]) {
      assert.equal(counted(c, offsets), 0)
    }
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (high, offsets) => {
        trackCommittedWatermarks(dsm, client(() => ({ highOffset: high })), offsets)
        trackCommittedWatermarks(dsm, client(() => ({ highOffset: high })), [{ topic: 't', partition: 2, offset: high }])
      }),
      { numRuns: 300 },
    )
    trackCommittedWatermarks(dsm, client(() => ({ highOffset: 17, lowOffset: 0 })), [{ topic: 'valid', partition: 3, offset: 10 }])
    await dsm.flush()
    assert.deepEqual(
      watermarksOf(service).filter((b) => b.Tags.includes('topic:valid')).map((b) => [b.Tags, b.Value]),
      [[['partition:3', 'topic:valid', 'type:kafka_high_watermark'], 17]],
    )
    await dsm.shutdown()
  })
})

/**
 * commitOffsets, again after a second while the group is rejoining: on a loaded machine a kafkajs
 * heartbeat can miss the mock cluster's session timeout, and a commit made before the rejoin is refused.
 */
async function commitWhenJoined(consumer: any, offsets: object[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await consumer.commitOffsets(offsets)
    } catch (err) {
      if (attempt === 5) throw err
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}
