/**
 * Kafka lag from high watermarks (views/lag.ts): consumers report `kafka_high_watermark` backlogs (as
 * dd-trace-go and pathwise do) beside their commits, and the agent shows their lag when no
 * producer reports produce offsets; where both arrive, the larger end counts. Payloads go to the
 * agent over HTTP, as tracers send them.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { EdgeDetail, Summary } from '../src/views/api.js'
import type { LagRow } from '../src/views/lag.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, type BucketSpec } from './helpers/agent-fixtures.js'

/** A bucket start; the agent's clock is set past it. */
const B = Date.UTC(2026, 0, 1, 12, 0, 0)

/** As dd-trace-go writes them: partition, topic, type, then the cluster id where known. */
const watermark = (topic: string, partition: number, value: number, cluster?: string) => ({
  tags: [`partition:${partition}`, `topic:${topic}`, 'type:kafka_high_watermark', ...(cluster ? [`kafka_cluster_id:${cluster}`] : [])],
  value,
})
const commit = (group: string, topic: string, partition: number, value: number, cluster?: string) => ({
  tags: ['type:kafka_commit', `consumer_group:${group}`, `topic:${topic}`, `partition:${partition}`, ...(cluster ? [`kafka_cluster_id:${cluster}`] : [])],
  value,
})
const produce = (topic: string, partition: number, value: number) => ({ tags: ['type:kafka_produce', `topic:${topic}`, `partition:${partition}`], value })

async function send(url: string, service: string, buckets: BucketSpec[]): Promise<void> {
  const res = await postStats(url, pathwisePayload(service, buckets))
  assert.equal(res.status, 200, res.text)
}

type Fields = Pick<LagRow, 'group' | 'topic' | 'partition' | 'cluster' | 'produceOffset' | 'highWatermark' | 'commitOffset' | 'lagMessages' | 'lagSeconds' | 'produceRate'>

function row(rows: LagRow[], group: string, topic: string, partition: string): Fields {
  const r = rows.find((x) => x.group === group && x.topic === topic && x.partition === partition)
  assert.ok(r, `no lag row for ${group} ${topic} ${partition}`)
  const { cluster, produceOffset, highWatermark, commitOffset, lagMessages, lagSeconds, produceRate } = r
  return { group, topic, partition, cluster, produceOffset, highWatermark, commitOffset, lagMessages, lagSeconds, produceRate }
}

describe('Kafka lag from high watermarks', () => {
  let agent: RunningAgent
  let s: Summary

  before(async () => {
    agent = await startAgent({ port: 0, log: () => {}, now: () => B + 25_000 })
    // billing reads `orders`, whose producers send no produce offsets: only its watermarks and commits.
    await send(agent.url, 'billing', [
      {
        startMs: B - 10_000,
        points: [{ tags: ['direction:in', 'group:billing', 'topic:orders', 'type:kafka'], hash: 0x11n, edge: [0.1, 0.2] }],
        backlogs: [watermark('orders', 0, 900), commit('billing', 'orders', 0, 880), watermark('orders', 1, 50)],
      },
      { startMs: B, backlogs: [watermark('orders', 0, 1000), commit('billing', 'orders', 0, 940), commit('billing', 'orders', 1, 50)] },
    ])
    // A lower watermark of the same key and bucket from another payload (a consumer's older fetch): the highest is kept.
    await send(agent.url, 'billing', [{ startMs: B, backlogs: [watermark('orders', 0, 990)] }])
    // `payments` has instrumented producers too: per partition the larger end counts.
    await send(agent.url, 'payments-api', [
      { startMs: B - 10_000, backlogs: [produce('payments', 0, 400), produce('payments', 1, 700)] },
      { startMs: B, backlogs: [produce('payments', 0, 499), produce('payments', 1, 800)] },
    ])
    await send(agent.url, 'ledger', [
      {
        startMs: B,
        backlogs: [
          // Partition 0: the watermark is fresher (its producer's last offset 499 is the 500th message; 20 more since, uninstrumented).
          watermark('payments', 0, 520),
          commit('ledger', 'payments', 0, 490),
          // Partition 1: the consumer's last fetch is older than the producer's last offset.
          watermark('payments', 1, 700),
          commit('ledger', 'payments', 1, 750),
        ],
      },
    ])
    // Two clusters with a topic of the same name: a commit takes the watermark of its own cluster.
    await send(agent.url, 'audit', [
      { startMs: B, backlogs: [watermark('events', 0, 100, 'c1'), watermark('events', 0, 999, 'c2'), commit('audit', 'events', 0, 60, 'c1')] },
    ])
    s = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(() => agent.close())

  test('no produce offsets: the lag is the latest watermark minus the latest commit, its rate the watermark\'s growth', () => {
    assert.deepEqual(row(s.lag, 'billing', 'orders', '0'), {
      group: 'billing',
      topic: 'orders',
      partition: '0',
      cluster: '',
      produceOffset: null,
      highWatermark: 1000,
      commitOffset: 940,
      lagMessages: 60,
      // 100 messages in 10 s.
      lagSeconds: 6,
      produceRate: 10,
    })
    // A single watermark: caught up, 0 s whatever the rate.
    assert.deepEqual(row(s.lag, 'billing', 'orders', '1'), {
      group: 'billing',
      topic: 'orders',
      partition: '1',
      cluster: '',
      produceOffset: null,
      highWatermark: 50,
      commitOffset: 50,
      lagMessages: 0,
      lagSeconds: 0,
      produceRate: null,
    })
    const edge = s.edges.find((e) => e.id === 'kafka:orders>service:billing#billing')
    assert.deepEqual(edge?.lag, { messages: 60, seconds: 6 })
  })

  test('produce offsets and watermarks: the larger end counts', () => {
    const p0 = row(s.lag, 'ledger', 'payments', '0')
    assert.deepEqual([p0.produceOffset, p0.highWatermark, p0.commitOffset, p0.lagMessages], [499, 520, 490, 30])
    // The watermark series has one sample: the rate is the produce offsets' (99 in 10 s).
    assert.ok(Math.abs(p0.produceRate! - 9.9) < 1e-9, `rate ${p0.produceRate}`)
    // The end was 400 at the end of the first bucket and 520 at the end of the second: 490 was reached 2.5 s before it.
    assert.ok(Math.abs(p0.lagSeconds! - 2.5) < 1e-9, `seconds ${p0.lagSeconds}`)
    const p1 = row(s.lag, 'ledger', 'payments', '1')
    assert.deepEqual([p1.produceOffset, p1.highWatermark, p1.commitOffset, p1.lagMessages, p1.produceRate, p1.lagSeconds], [800, 700, 750, 50, 10, 5])
  })

  test('a commit reads the watermark of its own cluster', () => {
    const r = row(s.lag, 'audit', 'events', '0')
    assert.deepEqual([r.cluster, r.highWatermark, r.lagMessages], ['c1', 100, 40])
  })

  test('/api/lag and /api/edge: the lag per partition, and its history bucket by bucket', async () => {
    assert.deepEqual((await getJson<Summary>(agent.url, '/api/lag')).lag, s.lag)
    const d = await getJson<EdgeDetail>(agent.url, `/api/edge?id=${encodeURIComponent('kafka:orders>service:billing#billing')}`)
    assert.deepEqual(
      d.lag.map((r) => [r.partition, r.highWatermark, r.lagMessages]),
      [
        ['0', 1000, 60],
        ['1', 50, 0],
      ],
    )
    assert.deepEqual(d.lagHistory, [
      {
        partition: '0',
        cluster: '',
        points: [
          [B - 10_000, 20],
          [B, 60],
        ],
      },
      { partition: '1', cluster: '', points: [[B, 0]] },
    ])
  })

  test('a negative or missing watermark (no offset known) is not read', async () => {
    const fresh = await startAgent({ port: 0, log: () => {}, now: () => B + 25_000 })
    try {
      await send(fresh.url, 'billing', [{ startMs: B, backlogs: [watermark('orders', 0, -1001), commit('billing', 'orders', 0, 5)] }])
      const r = row((await getJson<Summary>(fresh.url, '/api/lag')).lag, 'billing', 'orders', '0')
      assert.deepEqual([r.highWatermark, r.lagMessages, r.lagSeconds], [null, null, null])
    } finally {
      await fresh.close()
    }
  })
})
