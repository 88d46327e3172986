/**
 * Buckets older than 16 minutes rolled up into minutes (model/cells.ts, model/store.ts): on a clock
 * the test moves, a minute of six 10 s buckets is read before and after its roll-up. Counts are the
 * same, quantiles the same and within the sketch's 1% of the exact ones, the minute cell's sketches
 * the six buckets' merged byte for byte; /api/edge shows the minute as one bucket, its rate over
 * 60 s; a range reaching past 16 minutes starts at the minute.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { CompactWriter } from 'pathwise/core'
import { FINE_MS } from '../src/model/cells.js'
import { CELL_WIDTH, EDGE, PATHWAY, SIZE } from '../src/model/payload.js'
import { SETTLE_MS } from '../src/model/range.js'
import { bucketStart, Store } from '../src/model/store.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import type { EdgeDetail, Status, Summary } from '../src/views/api.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { latencies } from './helpers/agent-pipeline.js'

/** 5 s into a minute. */
const T0 = Date.UTC(2026, 0, 1, 12, 0, 5)
/** The minute rolled up: 5 minutes before T0, in 10 s buckets at first. */
const M = T0 - 5_000 - 5 * 60_000
const PRODUCE = ['direction:out', 'topic:orders', 'type:kafka']
const CONSUME = ['direction:in', 'group:g', 'topic:orders', 'type:kafka']
const OUT = 'service:shop>kafka:orders'
const IN = 'kafka:orders>service:billing#g'

/** Each bucket of the minute: a different count and spread of latencies, so that the minute's quantiles are not any bucket's. */
const sent = Array.from({ length: 6 }, (_, i) => ({
  start: M + i * 10_000,
  edge: latencies(100 + i, 50 + 40 * i, 0.001 * (i + 1), 0.004 * (i + 2)),
}))

/** The exact quantile the agent's sketches approximate (rank q × (n − 1), rounded down). */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(q * (sorted.length - 1))]
}

const within1 = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= 0.0101 * expected, `${what}: ${actual} is not within 1% of ${expected}`)

describe('roll-up: a minute of 10 s buckets into one cell', () => {
  let clock = T0
  let agent: RunningAgent
  let before1h: Summary
  let beforeEdge: EdgeDetail
  let beforeCells: number
  before(async () => {
    agent = await startAgent({ port: 0, log: () => {}, now: () => clock })
    const buckets = (tags: string[], hash: bigint, parent = 0n) => sent.map(({ start, edge }) => ({ startMs: start, points: [{ tags, hash, parent, edge }] }))
    assert.equal((await postStats(agent.url, pathwisePayload('shop', buckets(PRODUCE, 1n)))).status, 200)
    assert.equal((await postStats(agent.url, pathwisePayload('billing', buckets(CONSUME, 2n, 1n)))).status, 200)
    before1h = await getJson<Summary>(agent.url, '/api/summary?range=3600')
    beforeEdge = await getJson<EdgeDetail>(agent.url, `/api/edge?range=3600&id=${encodeURIComponent(OUT)}`)
    beforeCells = (await getJson<Status>(agent.url, '/api/status')).cells
    // 17 minutes on: the minute is past the 16 kept at 10 s.
    clock = T0 + 17 * 60_000
  })
  after(() => agent.close())

  test('before: six 10 s buckets a series, each on the edge chart over its 10 s', () => {
    assert.equal(beforeCells, 12)
    assert.deepEqual(
      beforeEdge.buckets.map((b) => [b.start - M, b.count, b.rate]),
      sent.map((b) => [b.start - M, b.edge.length, b.edge.length / 10]),
    )
  })

  test('after: one cell a series, the same counts and quantiles, within 1% of the exact ones', async () => {
    const s = await getJson<Summary>(agent.url, '/api/summary?range=3600')
    assert.equal((await getJson<Status>(agent.url, '/api/status')).cells, 2)
    const all = sent.flatMap((b) => b.edge)
    for (const id of [OUT, IN]) {
      const [was, is] = [before1h, s].map((x) => x.edges.find((e) => e.id === id)!)
      assert.equal(is.count, all.length, id)
      assert.equal(is.count, was.count, id)
      assert.deepEqual(is.latency, was.latency, id)
      for (const q of ['p50', 'p95', 'p99'] as const) within1(is.latency![q], exact(all, { p50: 0.5, p95: 0.95, p99: 0.99 }[q]), `${id} ${q}`)
    }
    const [was, is] = [before1h, s].map((x) => x.pathways.find((p) => p.service === 'billing')!)
    assert.deepEqual([is.count, is.latency], [was.count, was.latency])
  })

  test('the edge chart shows the minute as one bucket, its rate over 60 s', async () => {
    const d = await getJson<EdgeDetail>(agent.url, `/api/edge?range=3600&id=${encodeURIComponent(OUT)}`)
    const total = sent.reduce((n, b) => n + b.edge.length, 0)
    assert.deepEqual(
      d.buckets.map((b) => [b.start - M, b.count, b.rate, b.filling]),
      [[0, total, total / 60, false]],
    )
  })

  test('a range reaching past 16 minutes starts at the minute its start falls in', async () => {
    // A range starting 30 s into the minute reads all of it.
    const range = (bucketStart(clock - SETTLE_MS) - (M + 30_000)) / 1000
    const s = await getJson<Summary>(agent.url, `/api/summary?range=${range}`)
    assert.equal(s.edges.find((e) => e.id === OUT)?.count, sent.reduce((n, b) => n + b.edge.length, 0))
  })
})

describe('roll-up in the store: the minute cell is the six buckets merged', () => {
  test('same protobufs, byte for byte, as the cells summed before', () => {
    let clock = T0
    const store = new Store({ windowMs: 3_600_000, maxSeries: 10, maxCells: 100, now: () => clock })
    for (const { start, edge } of sent) {
      const id = store.cellFor('shop', 'test', 1n, 0n, PRODUCE, start)!
      assert.ok(store.mergeInto(id, cellBytes(edge)))
    }
    const series = [...store.series()][0]
    const protos = (): Uint8Array[] => {
      store.sketches.sum([...series.cells.values()], series.cells.size)
      return [PATHWAY, EDGE, SIZE].map((i) => store.sketches.sumProto(i))
    }
    const was = protos()
    assert.equal(series.cells.size, 6)
    clock += FINE_MS + 60_000
    store.evict()
    assert.deepEqual([...series.cells.keys()], [M])
    assert.deepEqual(protos(), was)
  })
})

/** A cell of the given edge latencies (pathway latencies the same, sizes 100 B), as a tracer's point would arrive. */
function cellBytes(edge: number[]): Uint8Array {
  const writer = new CompactWriter(CELL_WIDTH)
  for (const v of edge) {
    writer.add(PATHWAY, v)
    writer.add(EDGE, v)
    writer.add(SIZE, 100)
  }
  return writer.endCell().slice()
}
