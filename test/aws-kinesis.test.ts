/**
 * Kinesis through kinesis-local (kinesis-mock, speaking the Kinesis wire protocol) with the
 * middleware mode, points checked at a real HTTP Agent stand-in: produce and consume checkpoints
 * per record, the stream name followed from GetShardIterator, edge latency from the arrival time,
 * the opt-in JSON context (exact links, data that is not a JSON object untouched), and the
 * GetRecords -> send hand-off.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordCommand,
  PutRecordsCommand,
  waitUntilStreamExists,
  type _Record,
} from '@aws-sdk/client-kinesis'
import { PATHWAY_KEY, createDataStreams, decodePathwayContext, type DataStreams } from '../bindings/index.js'
import { pathwiseKinesis, type PathwiseKinesisOptions } from '../bindings/aws/index.js'
import { contextOf } from '../bindings/instrument/received-messages.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { kinesisClientConfig, startKinesis, type KinesisPeer } from './peers/kinesis.js'
import { ENV, expectedHash, waitForPoint } from './fixtures/aws/pathways.js'

const out = (stream: string) => ['direction:out', `topic:${stream}`, 'type:kinesis']
const into = (stream: string) => ['direction:in', `topic:${stream}`, 'type:kinesis']
const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data)
/** DDSketch values are within 1% of the truth. */
const ACCURACY = 0.01

describe('Kinesis', () => {
  let agent: TestAgent
  let peer: KinesisPeer
  let admin: KinesisClient
  const open: DataStreams[] = []
  const clients: KinesisClient[] = []
  let streamCount = 0

  function service(name: string, options?: PathwiseKinesisOptions): { dsm: DataStreams; kinesis: KinesisClient } {
    const dsm = createDataStreams({ enabled: true, service: name, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const kinesis = new KinesisClient(kinesisClientConfig(peer.endpoint))
    kinesis.middlewareStack.use(pathwiseKinesis(dsm, options))
    open.push(dsm)
    clients.push(kinesis)
    return { dsm, kinesis }
  }

  async function stream(): Promise<string> {
    const name = `s${++streamCount}`
    await admin.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }))
    await waitUntilStreamExists({ client: admin, maxWaitTime: 20, minDelay: 0.1, maxDelay: 0.2 }, { StreamName: name })
    return name
  }

  /** Reads the stream's only shard from the start until `count` records have come. */
  async function readAll(kinesis: KinesisClient, name: string, count: number): Promise<{ records: _Record[]; next: string }> {
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({ StreamName: name, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }),
    )
    const records: _Record[] = []
    let iterator = ShardIterator!
    while (records.length < count) {
      const { Records, NextShardIterator } = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }))
      records.push(...(Records ?? []))
      iterator = NextShardIterator!
      if (records.length < count) await sleep(50)
    }
    return { records, next: iterator }
  }

  before(async () => {
    ;[agent, peer] = await Promise.all([startAgent(), startKinesis()])
    admin = new KinesisClient(kinesisClientConfig(peer.endpoint))
    clients.push(admin)
  })
  after(async () => {
    await Promise.all(open.map((d) => d.shutdown()))
    for (const client of clients) client.destroy()
    await Promise.all([agent.close(), peer.stop()])
  })

  test('A puts (single and batch), C reads with GetRecords: a checkpoint per record, the stream named by the shard iterator', async () => {
    const a = service('kin-a')
    const c = service('kin-c')
    const s = await stream()
    await a.kinesis.send(new PutRecordCommand({ StreamName: s, Data: utf8('one'), PartitionKey: 'pk' }))
    await a.kinesis.send(
      new PutRecordsCommand({
        StreamName: s,
        Records: [
          { Data: utf8('two'), PartitionKey: 'pk' },
          { Data: utf8('three'), PartitionKey: 'pk', ExplicitHashKey: '1' },
        ],
      }),
    )
    const { records, next } = await readAll(c.kinesis, s, 3)
    assert.deepEqual(records.map((r) => text(r.Data)), ['one', 'two', 'three'])
    // The next iterator still knows its stream.
    await a.kinesis.send(new PutRecordCommand({ StreamName: s, Data: utf8('four'), PartitionKey: 'pk' }))
    const { Records } = await c.kinesis.send(new GetRecordsCommand({ ShardIterator: next }))
    assert.equal(text(Records?.[0]?.Data), 'four')

    await Promise.all([a.dsm.flush(), c.dsm.flush()])
    const pa = await waitForPoint(agent, 'kin-a', expectedHash('kin-a', out(s), 0n))
    assert.deepEqual(pa.EdgeTags, out(s))
    const sizes = decodeSketch(pa.PayloadSize)
    assert.equal(sizes.count, 4)
    // data + partition key (+ explicit hash key)
    assert.ok(Math.abs(sizes.quantile(0) - 5) <= 0.05, `smallest ${sizes.quantile(0)}`)
    assert.ok(Math.abs(sizes.quantile(1) - 8) <= 0.1, `largest ${sizes.quantile(1)}`)
    // No context crosses the stream: C starts a new segment.
    const pc = await waitForPoint(agent, 'kin-c', expectedHash('kin-c', into(s), 0n))
    assert.equal(pc.ParentHash, 0n)
    assert.deepEqual(pc.EdgeTags, into(s))
    assert.equal(decodeSketch(pc.PayloadSize).count, 4)
  })

  test("C's edge latency is the time the record spent in the stream", async () => {
    const a = service('kin-wait-a')
    const c = service('kin-wait-c')
    const s = await stream()
    const WAIT_MS = 1200
    await a.kinesis.send(new PutRecordCommand({ StreamName: s, Data: utf8('waiting'), PartitionKey: 'pk' }))
    await sleep(WAIT_MS)
    const { records } = await readAll(c.kinesis, s, 1)
    const arrival = records[0].ApproximateArrivalTimestamp!.getTime()
    assert.equal(contextOf(records[0])?.pathwayStartMs, arrival)

    await c.dsm.flush()
    const pc = await waitForPoint(agent, 'kin-wait-c', expectedHash('kin-wait-c', into(s), 0n))
    const edge = decodeSketch(pc.EdgeLatency).quantile(0)
    const pathway = decodeSketch(pc.PathwayLatency).quantile(0)
    assert.ok(edge >= (WAIT_MS / 1000) * (1 - ACCURACY), `edge latency ${edge} s`)
    assert.ok(edge < 10, `edge latency ${edge} s`)
    assert.ok(pathway >= (WAIT_MS / 1000) * (1 - ACCURACY), `pathway latency ${pathway} s`)
  })

  test('the opt-in JSON context links C to A exactly, keeps the JSON text, and links what C puts next', async () => {
    const a = service('kin-json-a', { jsonContext: true })
    const c = service('kin-json-c', { jsonContext: true })
    const d = service('kin-json-d', { jsonContext: true })
    const s = await stream()
    const s2 = await stream()
    // A number too large for a double, and formatting, survive: the text is spliced, not re-serialized.
    const original = '{ "order": 12345678901234567890, "items": ["a", "}"] }\n'
    const input = { StreamName: s, Data: utf8(original), PartitionKey: 'pk' }
    await a.kinesis.send(new PutRecordCommand(input))
    assert.equal(text(input.Data), original, "the caller's input is left as written")
    await a.kinesis.send(new PutRecordsCommand({ StreamName: s, Records: [{ Data: utf8('{}'), PartitionKey: 'pk' }] }))

    // Read here rather than through readAll, so that the receive is in this flow (see received.ts).
    const { ShardIterator } = await c.kinesis.send(
      new GetShardIteratorCommand({ StreamName: s, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }),
    )
    const { Records: records = [] } = await c.kinesis.send(new GetRecordsCommand({ ShardIterator }))
    assert.equal(records.length, 2)
    const hA = expectedHash('kin-json-a', out(s), 0n)
    const first = text(records[0].Data)
    assert.equal(first.replace(/,"_datadog":\{"dd-pathway-ctx-base64":"[A-Za-z0-9+/=]+"\}(?= }\n$)/, ''), original)
    const carried = JSON.parse(first)._datadog as Record<string, string>
    assert.equal(decodePathwayContext(carried[PATHWAY_KEY])?.hash, hA)
    assert.match(text(records[1].Data), /^\{"_datadog":\{"dd-pathway-ctx-base64":"[A-Za-z0-9+/=]{28}"\}\}$/)
    const hC = expectedHash('kin-json-c', into(s), hA)
    for (const record of records) assert.equal(contextOf(record)?.hash, hC)

    // C puts on after `await GetRecords`: linked to the last record read.
    await c.kinesis.send(new PutRecordCommand({ StreamName: s2, Data: utf8('{"step":2}'), PartitionKey: 'pk' }))
    const read2 = await readAll(d.kinesis, s2, 1)
    const hCout = expectedHash('kin-json-c', out(s2), hC)
    assert.equal(contextOf(read2.records[0])?.hash, expectedHash('kin-json-d', into(s2), hCout))

    await Promise.all([a.dsm.flush(), c.dsm.flush()])
    const pc = await waitForPoint(agent, 'kin-json-c', hC)
    assert.equal(pc.ParentHash, hA)
    assert.equal(decodeSketch(pc.PayloadSize).count, 2)
    // Latencies run from A's put, not from the arrival.
    assert.ok(decodeSketch(pc.PathwayLatency).quantile(1) >= decodeSketch(pc.EdgeLatency).quantile(1) * (1 - ACCURACY))
    const pcOut = await waitForPoint(agent, 'kin-json-c', hCout)
    assert.equal(pcOut.ParentHash, hC)
  })

  test('near the limits (1 MiB a record, 5 MiB a PutRecords): contexts in order while they fit, every record delivered as written', async () => {
    const a = service('kin-limits-a', { jsonContext: true })
    const c = service('kin-limits-c')
    const s = await stream()
    const json = (bytes: number, fill: string) => `{"f":"${fill.repeat(bytes - 8)}"}`
    // One record 20 bytes under 1 MiB with its partition key: no room for a context (about 68 bytes).
    const big = json(1_048_576 - 1 - 20, 'b')
    await a.kinesis.send(new PutRecordCommand({ StreamName: s, Data: utf8(big), PartitionKey: 'k' }))
    // Six records 80 bytes under 5 MiB in all: the first one's context fits, the other five go as written.
    const sixth = json(5_242_880 / 6 - 1 - 80 / 6, 'x')
    const records = Array.from({ length: 6 }, () => ({ Data: utf8(sixth), PartitionKey: 'k' }))
    const answer = await a.kinesis.send(new PutRecordsCommand({ StreamName: s, Records: records }))
    assert.equal(answer.FailedRecordCount ?? 0, 0)
    assert.equal(a.dsm.stats.contextsLeftOut, 6)
    const { records: got } = await readAll(c.kinesis, s, 7)
    const texts = got.map((r) => text(r.Data))
    assert.equal(texts[0], big)
    assert.match(texts[1], /,"_datadog":\{"dd-pathway-ctx-base64":"[A-Za-z0-9+/=]{28}"\}\}$/)
    assert.deepEqual(texts.slice(2), Array(5).fill(sixth))
  })

  test('in opt-in mode, data that is not a JSON object is left untouched', async () => {
    const a = service('kin-raw-a', { jsonContext: true })
    const c = service('kin-raw-c', { jsonContext: true })
    const s = await stream()
    const payloads = [
      Uint8Array.of(0x7b, 0xff, 0xfe, 0x00, 0x7d),
      utf8('plain text'),
      utf8('[{"a":1}]'),
      utf8('{"broken": '),
      utf8('"{}"'),
    ]
    for (const Data of payloads) await a.kinesis.send(new PutRecordCommand({ StreamName: s, Data, PartitionKey: 'pk' }))
    const { records } = await readAll(c.kinesis, s, payloads.length)
    assert.deepEqual(
      records.map((r) => Array.from(r.Data!)),
      payloads.map((p) => Array.from(p)),
    )
    // Each still counts, as a new segment.
    for (const record of records) assert.equal(contextOf(record)?.hash, expectedHash('kin-raw-c', into(s), 0n))
    await a.dsm.flush()
    const pa = await waitForPoint(agent, 'kin-raw-a', expectedHash('kin-raw-a', out(s), 0n))
    assert.equal(decodeSketch(pa.PayloadSize).count, payloads.length)
  })
})
