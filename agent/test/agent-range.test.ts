/**
 * The window rates and quantiles read (model/range.ts), on a clock that stands still 5 s into bucket B:
 * the buckets before B − 10 s are settled, B − 10 s is still filling (its services flush it
 * within 10 s of its end), B is the current one.
 *
 * What the agent used to show for this pipeline: each edge's rate over its own span, from its own
 * first bucket to the current one, the last bucket included whoever had flushed it: 1320 messages
 * over 50 s into the topic (26.4 msg/s) and 1020 over 40 s out of it (25.5; 33.0 once the consumer
 * flushed its last bucket) for the same messages.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { EdgeDetail, Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, type BucketSpec } from './helpers/agent-fixtures.js'
import { latencies } from './helpers/agent-pipeline.js'

const B = Date.UTC(2026, 0, 1, 12, 0, 0)
const PRODUCE = ['direction:out', 'topic:orders', 'type:kafka']
const CONSUME = ['direction:in', 'group:g', 'topic:orders', 'type:kafka']
const OUT = 'service:shop>kafka:orders'
const IN = 'kafka:orders>service:billing#g'

/** `n` messages with edge latencies in [lo, hi) s. */
const bucket = (startMs: number, tags: string[], hash: bigint, n: number, lo: number, hi: number, parent = 0n): BucketSpec => ({
  startMs,
  points: [{ tags, hash, parent, edge: latencies(startMs / 1000 + n, n, lo, hi) }],
})

describe('one window for every series', () => {
  let agent: RunningAgent
  let s: Summary
  before(async () => {
    agent = await startAgent({ port: 0, log: () => {}, now: () => B + 5_000 })
    // The producer starts late in B − 50 s; the consumer takes those 120 messages in the next bucket.
    const shop = [bucket(B - 50_000, PRODUCE, 1n, 120, 0.001, 0.002)]
    for (const t of [40, 30, 20]) shop.push(bucket(B - t * 1000, PRODUCE, 1n, 300, 0.001, 0.002))
    // Still filling: flushed by the producer, with outliers; not yet by the consumer.
    shop.push(bucket(B - 10_000, PRODUCE, 1n, 300, 5, 6))
    const billing = [bucket(B - 40_000, CONSUME, 2n, 420, 0.01, 0.02, 1n), bucket(B - 30_000, CONSUME, 2n, 300, 0.01, 0.02, 1n), bucket(B - 20_000, CONSUME, 2n, 300, 0.01, 0.02, 1n)]
    // A hop seen only in the bucket still filling.
    const late = [bucket(B - 10_000, ['direction:out', 'topic:new', 'type:sqs'], 3n, 50, 0.003, 0.004, 2n)]
    for (const [service, buckets] of [['shop', shop], ['billing', billing], ['late', late]] as const) {
      assert.equal((await postStats(agent.url, pathwisePayload(service, buckets))).status, 200)
    }
    s = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(() => agent.close())

  const edge = (id: string) => s.edges.find((e) => e.id === id)!

  test('both ends of a queue fed the same messages show the same rate, however their first and last buckets fall', () => {
    // 1020 settled messages each, over the same 40 s from the first bucket holding data.
    assert.equal(edge(OUT).rate, 25.5)
    assert.equal(edge(IN).rate, 25.5)
    const topic = s.nodes.find((n) => n.id === 'kafka:orders')!
    assert.equal(topic.inRate, topic.outRate)
    // Counts take the bucket still filling too, and say how much of them it holds.
    assert.deepEqual([edge(OUT).count, edge(OUT).filling], [1320, 300])
    assert.deepEqual([edge(IN).count, edge(IN).filling], [1020, 0])
  })

  test('a bucket still filling is not mixed into the quantiles, and /api/edge marks it', async () => {
    assert.ok(edge(OUT).latency!.p99 < 0.003, `p99 ${edge(OUT).latency!.p99}`)
    const d = await getJson<EdgeDetail>(agent.url, `/api/edge?id=${encodeURIComponent(OUT)}`)
    assert.deepEqual(
      d.buckets.map((b) => [b.start - B, b.count, b.rate, b.filling]),
      [
        [-50_000, 120, 12, false],
        [-40_000, 300, 30, false],
        [-30_000, 300, 30, false],
        [-20_000, 300, 30, false],
        [-10_000, 300, 30, true],
      ],
    )
    assert.ok(d.buckets[4].latency!.p50 >= 5)
  })

  test('a hop with nothing settled yet shows its filling buckets, all of its count marked filling', () => {
    const late = edge('service:late>sqs:new')
    assert.deepEqual([late.count, late.filling, late.rate], [50, 50, 5])
    assert.ok(late.latency && late.latency.p50 >= 0.003)
  })

  test('a 10 s range reads the last settled bucket for every series', async () => {
    const short = await getJson<Summary>(agent.url, '/api/summary?range=10')
    assert.deepEqual(
      [OUT, IN].map((id) => short.edges.find((e) => e.id === id)!.rate),
      [30, 30],
    )
  })
})
