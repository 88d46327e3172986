/**
 * The views (views/: topology, lag, the JSON API) computed from a known pipeline sent to a real
 * agent over HTTP, against what was sent: nodes and edges, rates, latency quantiles within 1%,
 * pathways with end-to-end latency, Kafka lag, /api/* and /metrics; then the window, the current
 * bucket and the series cap on a set clock, parent links, loops, and SQLite history across a restart.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { EdgeDetail, Summary } from '../src/views/api.js'
import { startAgent, type AgentOptions, type RunningAgent } from '../src/server.js'
import type { Quantiles } from '../src/model/sketch.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { exactQuantile, H, pipelineBucket, type ServicePayload } from './helpers/agent-pipeline.js'

const quiet = (): void => {}
/** A bucket start; the tests' clock is set relative to it. */
const B = Date.UTC(2026, 0, 1, 12, 0, 0)

type Hop = keyof typeof H
const hops = Object.keys(H) as Hop[]

/** Sends the known pipeline: 40 messages per hop in bucket B−10 s, 60 in bucket B, and 20 more orders in B from a second payload. */
async function sendPipeline(url: string): Promise<Record<Hop, { edge: number[]; pathway: number[] }>> {
  const first = pipelineBucket(B - 10_000, 40, 1)
  const second = pipelineBucket(B, 60, 2)
  const extra = pipelineBucket(B, 20, 3)
  const send = async (p: ServicePayload): Promise<void> => {
    const res = await postStats(url, pathwisePayload(p.service, p.buckets))
    assert.equal(res.status, 200, res.text)
  }
  for (const p of [...first.payloads, ...second.payloads, extra.payloads[0]]) await send(p)
  const produce = (partition: number, value: number) => ({ tags: [`partition:${partition}`, 'topic:orders', 'type:kafka_produce'], value })
  await send({ service: 'orders-api', buckets: [{ startMs: B - 10_000, backlogs: [produce(0, 1000), produce(1, 2000)] }, { startMs: B, backlogs: [produce(0, 1100), produce(1, 2050)] }] })
  // A lower offset for the same key and bucket, from another payload: the highest is kept.
  await send({ service: 'orders-api', buckets: [{ startMs: B, backlogs: [produce(0, 1050)] }] })
  // Commits with their tags in the orders the different tracers use.
  await send({
    service: 'billing',
    buckets: [
      {
        startMs: B,
        backlogs: [
          { tags: ['consumer_group:billing', 'partition:0', 'topic:orders', 'type:kafka_commit'], value: 1080 },
          { tags: ['type:kafka_commit', 'topic:orders', 'consumer_group:billing', 'partition:1'], value: 2050 },
        ],
      },
    ],
  })
  await send({ service: 'analytics', buckets: [{ startMs: B - 10_000, backlogs: [{ tags: ['partition:0', 'topic:orders', 'consumer_group:analytics', 'type:kafka_commit'], value: 1000 }] }] })
  const all = {} as Record<Hop, { edge: number[]; pathway: number[] }>
  for (const h of hops) {
    all[h] = {
      edge: [...first.values[h].edge, ...second.values[h].edge, ...(h === 'ordersOut' ? extra.values[h].edge : [])],
      pathway: [...first.values[h].pathway, ...second.values[h].pathway, ...(h === 'ordersOut' ? extra.values[h].pathway : [])],
    }
  }
  return all
}

/** Within DDSketch's relative accuracy of 1%. */
function assertQuantiles(actual: Quantiles | null, expected: Quantiles, what: string): void {
  assert.ok(actual, `${what}: no quantiles`)
  for (const k of ['p50', 'p95', 'p99'] as const) within1(actual[k], expected[k], `${what} ${k}`)
}

function within1(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= 0.01 * expected + 1e-12, `${what}: ${actual} vs ${expected}`)
}

function exact(values: number[]): Quantiles {
  return { p50: exactQuantile(values, 0.5), p95: exactQuantile(values, 0.95), p99: exactQuantile(values, 0.99) }
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`)

async function agentAt(now: () => number, options: AgentOptions = {}): Promise<RunningAgent> {
  return startAgent({ port: 0, log: quiet, now, ...options })
}

describe('computation: a known set of payloads', () => {
  let agent: RunningAgent
  let values: Record<Hop, { edge: number[]; pathway: number[] }>
  let s: Summary
  before(async () => {
    // Both buckets settled (range.ts): they ended more than SETTLE_MS ago.
    agent = await agentAt(() => B + 25_000)
    values = await sendPipeline(agent.url)
    s = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(() => agent.close())

  test('topology: services and queues as nodes, produce and consume edges', () => {
    assert.deepEqual(
      s.nodes.map((n) => [n.id, n.kind, n.role ?? '']),
      [
        ['kafka:orders', 'queue', 'topic'],
        ['kinesis:clicks', 'queue', 'stream'],
        ['service:aggregator', 'service', ''],
        ['service:analytics', 'service', ''],
        ['service:billing', 'service', ''],
        ['service:mailer', 'service', ''],
        ['service:orders-api', 'service', ''],
        ['sqs:invoices', 'queue', 'queue'],
      ],
    )
    assert.deepEqual(
      s.edges.map((e) => [e.from, e.to, e.kind, e.group ?? '']),
      [
        ['kafka:orders', 'service:analytics', 'consume', 'analytics'],
        ['kafka:orders', 'service:billing', 'consume', 'billing'],
        ['kinesis:clicks', 'service:aggregator', 'consume', ''],
        ['service:analytics', 'kinesis:clicks', 'produce', ''],
        ['service:billing', 'sqs:invoices', 'produce', ''],
        ['service:orders-api', 'kafka:orders', 'produce', ''],
        ['sqs:invoices', 'service:mailer', 'consume', ''],
      ],
    )
  })

  test('per edge: counts, messages per second and latency quantiles within 1%', () => {
    const byHop: Record<Hop, string> = {
      ordersOut: 'service:orders-api>kafka:orders',
      billingIn: 'kafka:orders>service:billing#billing',
      billingOut: 'service:billing>sqs:invoices',
      mailerIn: 'sqs:invoices>service:mailer',
      analyticsIn: 'kafka:orders>service:analytics#analytics',
      analyticsOut: 'service:analytics>kinesis:clicks',
      aggregatorIn: 'kinesis:clicks>service:aggregator',
    }
    for (const h of hops) {
      const e = s.edges.find((x) => x.id === byHop[h])
      assert.ok(e, h)
      assert.equal(e.count, values[h].edge.length, h)
      // Two closed 10 s buckets hold data: the rate is their count over 20 s.
      close(e.rate, values[h].edge.length / 20, `${h} rate`)
      assertQuantiles(e.latency, exact(values[h].edge), h)
      assertQuantiles(e.payloadSize, { p50: 100, p95: 100, p99: 100 }, `${h} size`)
    }
    assert.equal(s.edges.find((e) => e.id === byHop.ordersOut)?.count, 120)
    close(s.edges.find((e) => e.id === byHop.ordersOut)!.rate, 6, 'orders rate')
  })

  test('per node: throughput in and out', () => {
    const topic = s.nodes.find((n) => n.id === 'kafka:orders')!
    close(topic.inRate, 6, 'into the topic')
    close(topic.outRate, 10, 'out of the topic, both groups')
    // A queue's p99: the latency of the hops out of it; a service's: the end-to-end latency of what it consumes.
    within1(topic.p99, exact([...values.billingIn.edge, ...values.analyticsIn.edge]).p99, 'topic p99')
    within1(s.nodes.find((n) => n.id === 'service:mailer')?.p99, exact(values.mailerIn.pathway).p99, 'mailer p99')
    assert.equal(s.nodes.find((n) => n.id === 'service:orders-api')?.p99, null)
  })

  test('per pathway end: end-to-end latency; Kinesis segments summed and marked approximate', () => {
    assert.deepEqual(
      s.pathways.map((p) => [p.nodes.join(' > '), p.approximate, p.complete]),
      [
        ['service:orders-api > kafka:orders > service:analytics', false, true],
        ['service:orders-api > kafka:orders > service:analytics > kinesis:clicks > service:aggregator', true, true],
        ['service:orders-api > kafka:orders > service:billing', false, true],
        ['service:orders-api > kafka:orders > service:billing > sqs:invoices > service:mailer', false, true],
      ],
    )
    const [toAnalytics, toAggregator, toBilling, toMailer] = s.pathways
    assertQuantiles(toMailer.latency, exact(values.mailerIn.pathway), 'to mailer')
    assertQuantiles(toBilling.latency, exact(values.billingIn.pathway), 'to billing')
    assertQuantiles(toAnalytics.latency, exact(values.analyticsIn.pathway), 'to analytics')
    const a = exact(values.aggregatorIn.pathway)
    const b = exact(values.analyticsOut.pathway)
    assertQuantiles(toAggregator.latency, { p50: a.p50 + b.p50, p95: a.p95 + b.p95, p99: a.p99 + b.p99 }, 'to aggregator')
    close(toMailer.rate, 5, 'mailer rate')
    assert.equal(toMailer.id, [H.ordersOut, H.billingIn, H.billingOut, H.mailerIn].map((h) => h.toString(16).padStart(16, '0')).join('-'))
  })

  test('Kafka lag per group, topic and partition, in messages and seconds, offsets of the same bucket', () => {
    // analytics has not reported for bucket B yet: its lag is read at B - 10 s, where it had caught up.
    assert.deepEqual(
      s.lag.map((r) => [r.group, r.topic, r.partition, r.produceOffset, r.commitOffset, r.lagMessages, r.lagSeconds, r.produceRate]),
      [
        ['analytics', 'orders', '0', 1000, 1000, 0, 0, 10],
        ['billing', 'orders', '0', 1100, 1080, 20, 2, 10],
        ['billing', 'orders', '1', 2050, 2050, 0, 0, 5],
      ],
    )
    const billing = s.edges.find((e) => e.id === 'kafka:orders>service:billing#billing')
    assert.deepEqual(billing?.lag, { messages: 20, seconds: 2 })
  })

  test('a consumer that stopped committing: once two buckets after its last commit have settled, its lag is read at the end', async () => {
    // B + 10 s and B + 20 s have settled: analytics committed nothing after B - 10 s while the end moved on.
    const later = await agentAt(() => B + 45_000)
    try {
      await sendPipeline(later.url)
      const r = (await getJson<Summary>(later.url, '/api/lag')).lag.find((x) => x.group === 'analytics')!
      // The end was at 1000, its commit, when B - 10 s ended: 10 s before B ended.
      assert.deepEqual([r.produceOffset, r.commitOffset, r.lagMessages, r.lagSeconds], [1100, 1000, 100, 10])
    } finally {
      await later.close()
    }
  })

  test('a shorter range reads only the last bucket', async () => {
    const short = await getJson<Summary>(agent.url, '/api/summary?range=10')
    const orders = short.edges.find((e) => e.id === 'service:orders-api>kafka:orders')!
    assert.equal(short.rangeSeconds, 10)
    assert.equal(orders.count, 80)
    close(orders.rate, 8, 'rate over the last bucket')
  })

  test('/api/edge: one edge over time, and its lag per partition', async () => {
    const d = await getJson<EdgeDetail>(agent.url, `/api/edge?id=${encodeURIComponent('kafka:orders>service:billing#billing')}`)
    assert.deepEqual(
      d.buckets.map((b) => [b.start, b.count, b.rate]),
      [
        [B - 10_000, 40, 4],
        [B, 60, 6],
      ],
    )
    assertQuantiles(d.buckets[0].latency, exact(values.billingIn.edge.slice(0, 40)), 'first bucket')
    assert.deepEqual(
      d.lag.map((r) => [r.partition, r.lagMessages]),
      [
        ['0', 20],
        ['1', 0],
      ],
    )
    assert.deepEqual(d.lagHistory, [
      { partition: '0', cluster: '', points: [[B, 20]] },
      { partition: '1', cluster: '', points: [[B, 0]] },
    ])
    const missing = await fetch(`${agent.url}/api/edge?id=nope`)
    assert.equal(missing.status, 404)
    await missing.body?.cancel()
  })

  test('/api/pathways, /api/lag and /api/topology serve the same data', async () => {
    assert.deepEqual((await getJson<Summary>(agent.url, '/api/pathways')).pathways, s.pathways)
    assert.deepEqual((await getJson<Summary>(agent.url, '/api/lag')).lag, s.lag)
    assert.deepEqual((await getJson<Summary>(agent.url, '/api/topology')).edges, s.edges)
  })

  test('/metrics in the Prometheus exposition format', async () => {
    const res = await fetch(`${agent.url}/metrics`)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    const line = (prefix: string): number => {
      const found = text.split('\n').find((l) => l.startsWith(prefix))
      assert.ok(found, `no line ${prefix}`)
      return Number(found.slice(found.lastIndexOf(' ') + 1))
    }
    // Histograms per stats point series, counting everything received (metrics.ts).
    // Labels with no value (this producer's group) are left out: Prometheus reads an empty label as none.
    const ordersOut = 'service="orders-api",env="test",pathway_hash="9a6ed7bfb001208e",parent_hash="0000000000000000",direction="out",type="kafka",topic="orders"'
    assert.match(text, /# TYPE pathwise_edge_latency_seconds histogram/)
    assert.equal(line(`pathwise_edge_latency_seconds_count{${ordersOut}}`), values.ordersOut.edge.length)
    assert.equal(line(`pathwise_edge_latency_seconds_bucket{${ordersOut},le="+Inf"}`), values.ordersOut.edge.length)
    const sum = values.ordersOut.edge.reduce((a, v) => a + v, 0)
    assert.ok(Math.abs(line(`pathwise_edge_latency_seconds_sum{${ordersOut}}`) - sum) <= 0.01 * sum, 'metric latency sum')
    // The bucket where the cumulative count reaches half the messages holds the exact median.
    const buckets = [...text.matchAll(new RegExp(`^pathwise_edge_latency_seconds_bucket\\{${ordersOut.replace(/[{}]/g, '\\$&')},le="([^"+]+)"\\} (\\S+)$`, 'gm'))].map(
      (m) => [Number(m[1]), Number(m[2])] as const,
    )
    const half = buckets.findIndex(([, n]) => n >= Math.ceil(0.5 * values.ordersOut.edge.length))
    const median = exact(values.ordersOut.edge).p50
    assert.ok(half > 0 && buckets[half - 1][0] / 1.01 < median && median <= buckets[half][0] * 1.01, `the median ${median} is in bucket ${buckets[half]?.[0]}`)
    assert.equal(line(`pathwise_payload_size_bytes_count{${ordersOut}}`), values.ordersOut.edge.length)
    assert.equal(line('pathwise_kafka_offset{kind="produce",consumer_group="",topic="orders",partition="0",kafka_cluster_id=""}'), 1100)
    assert.equal(line('pathwise_kafka_offset_timestamp_seconds{kind="produce",consumer_group="",topic="orders",partition="0",kafka_cluster_id=""}'), B / 1000)
    assert.equal(line('pathwise_kafka_lag_messages{consumer_group="billing",topic="orders",partition="0",kafka_cluster_id=""}'), 20)
    assert.equal(line('pathwise_kafka_lag_seconds{consumer_group="billing",topic="orders",partition="0",kafka_cluster_id=""}'), 2)
    assert.ok(line('pathwise_pathway_latency_seconds_count{service="mailer",') > 0)
    assert.ok(line('pathwise_intake_payloads_total{result="accepted"}') >= 15)
  })
})

describe('computation: time, window and caps', () => {
  test('the current bucket alone: its count over the time elapsed in it', async () => {
    const agent = await agentAt(() => B + 4_000)
    try {
      const p = pathwisePayload('solo', [{ startMs: B, points: [{ tags: ['direction:out', 'topic:t', 'type:sqs'], hash: 1n, edge: [1, 2, 3, 4, 5, 6, 7, 8] }] }])
      assert.equal((await postStats(agent.url, p)).status, 200)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      close(s.edges[0].rate, 2, 'partial bucket rate')
    } finally {
      await agent.close()
    }
  })

  test("failed sends (pathwise_failed_sends backlogs) on their service's produce edge, summed over payloads and the range", async () => {
    const agent = await agentAt(() => B + 25_000)
    try {
      const tags = ['direction:out', 'topic:orders', 'type:kafka']
      const failed = (value: number, topic = 'orders') => ({ tags: ['type:pathwise_failed_sends', `topic:${topic}`, 'transport:kafka'], value })
      const points = [{ tags, hash: 1n, edge: [1, 2, 3, 4, 5, 6, 7, 8] }]
      for (const body of [
        pathwisePayload('producer', [{ startMs: B - 10_000, points, backlogs: [failed(2)] }, { startMs: B, points, backlogs: [failed(3), failed(7, 'other')] }]),
        // another payload of the same service and bucket: the counts add up
        pathwisePayload('producer', [{ startMs: B, backlogs: [failed(1)] }]),
      ]) {
        assert.equal((await postStats(agent.url, body)).status, 200)
      }
      const s = await getJson<Summary>(agent.url, '/api/summary')
      const edge = s.edges.find((e) => e.id === 'service:producer>kafka:orders')
      assert.equal(edge?.failedSends, 6)
      assert.equal(edge?.count, 16)
      // No produce edge for the other topic: its failures stand alone, on no edge.
      assert.equal(s.edges.filter((e) => e.failedSends !== undefined).length, 1)
    } finally {
      await agent.close()
    }
  })

  test('the window: older buckets are not taken, and leave as time passes', async () => {
    let now = B + 5_000
    const agent = await agentAt(() => now, { windowMs: 60_000 })
    try {
      const at = (startMs: number, service: string): Uint8Array =>
        pathwisePayload(service, [{ startMs, points: [{ tags: ['direction:out', 'topic:t', 'type:kafka'], hash: 7n, edge: [0.1] }] }])
      assert.equal((await postStats(agent.url, at(B - 120_000, 'too-old'))).status, 200)
      assert.equal((await postStats(agent.url, at(B, 'fresh'))).status, 200)
      let s = await getJson<Summary>(agent.url, '/api/summary')
      assert.deepEqual(s.edges.map((e) => e.id), ['service:fresh>kafka:t'])
      assert.equal(s.status.points.outOfWindow, 1)
      now = B + 75_000
      s = await getJson<Summary>(agent.url, '/api/summary')
      assert.deepEqual(s.edges, [])
      assert.equal(s.status.cells, 0)
    } finally {
      await agent.close()
    }
  })

  test('a cap on distinct series: points past it are dropped and counted', async () => {
    const agent = await agentAt(() => B + 15_000, { maxSeries: 2 })
    try {
      const points = [1n, 2n, 3n].map((hash) => ({ tags: ['direction:out', `topic:t${hash}`, 'type:kafka'], hash, edge: [0.1] }))
      assert.equal((await postStats(agent.url, pathwisePayload('capped', [{ startMs: B, points }]))).status, 200)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.equal(s.edges.length, 2)
      assert.equal(s.status.points.dropped, 1)
      assert.equal(s.status.series, 2)
    } finally {
      await agent.close()
    }
  })
})

describe('computation: parent links', () => {
  test('a point with no queue in its tags is a direct hop from the service of its parent', async () => {
    const agent = await agentAt(() => B + 15_000)
    try {
      const call = pathwisePayload('web', [{ startMs: B, points: [{ tags: ['direction:out', 'type:http'], hash: 0xa1n, edge: [0.001] }] }])
      const serve = pathwisePayload('api', [{ startMs: B, points: [{ tags: ['direction:in', 'type:http'], hash: 0xb2n, parent: 0xa1n, edge: [0.02, 0.03], pathway: [0.021, 0.031] }] }])
      for (const p of [call, serve]) assert.equal((await postStats(agent.url, p)).status, 200)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.deepEqual(s.edges.map((e) => [e.id, e.kind, e.type, e.count]), [['service:web>service:api', 'direct', 'http', 2]])
      assert.deepEqual(s.pathways.map((p) => [p.nodes, p.complete]), [[['service:web', 'service:api'], true]])
    } finally {
      await agent.close()
    }
  })

  test('a consume point whose parent is not known ends a pathway marked incomplete', async () => {
    const agent = await agentAt(() => B + 15_000)
    try {
      const orphan = pathwisePayload('late', [
        { startMs: B, points: [{ tags: ['direction:in', 'group:g', 'topic:t', 'type:kafka'], hash: 0xc3n, parent: 0xdeadn, edge: [0.5] }] },
        { startMs: B, points: [{ tags: ['direction:in', 'topic:s', 'type:kinesis'], hash: 0xd4n, edge: [0.5] }] },
      ])
      assert.equal((await postStats(agent.url, orphan)).status, 200)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.deepEqual(
        s.pathways.map((p) => [p.nodes, p.complete, p.approximate]),
        [
          [['kafka:t', 'service:late'], false, false],
          [['kinesis:s', 'service:late'], false, false],
        ],
      )
    } finally {
      await agent.close()
    }
  })
})

describe('computation: loops', () => {
  test('a service that consumes a Kinesis stream and produces back into it: the walk ends', async () => {
    const agent = await agentAt(() => B + 15_000)
    try {
      const loop = pathwisePayload('looper', [
        {
          startMs: B,
          points: [
            { tags: ['direction:in', 'topic:s', 'type:kinesis'], hash: 0xe1n, edge: [0.2] },
            { tags: ['direction:out', 'topic:s', 'type:kinesis'], hash: 0xe2n, parent: 0xe1n, edge: [0.001], pathway: [0.25] },
          ],
        },
      ])
      assert.equal((await postStats(agent.url, loop)).status, 200)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.deepEqual(
        s.pathways.map((p) => [p.nodes, p.complete, p.approximate]),
        [[['kinesis:s', 'service:looper', 'kinesis:s', 'service:looper'], false, true]],
      )
    } finally {
      await agent.close()
    }
  })
})

describe('computation: SQLite history', () => {
  test('--db keeps what was received across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pathwise-agent-'))
    const db = join(dir, 'history.sqlite')
    try {
      const first = await agentAt(() => B + 15_000, { db })
      await sendPipeline(first.url)
      const before = await getJson<Summary>(first.url, '/api/summary')
      await first.close()
      const second = await agentAt(() => B + 15_000, { db })
      try {
        const afterRestart = await getJson<Summary>(second.url, '/api/summary')
        assert.equal(afterRestart.status.payloads.accepted, 0)
        assert.equal(afterRestart.status.db, db)
        assert.deepEqual(afterRestart.nodes, before.nodes)
        assert.deepEqual(afterRestart.edges, before.edges)
        assert.deepEqual(afterRestart.pathways, before.pathways)
        assert.deepEqual(afterRestart.lag, before.lag)
        // New data merges into what was loaded.
        const more = pathwisePayload('orders-api', [{ startMs: B, points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: H.ordersOut, edge: [0.001] }] }])
        assert.equal((await postStats(second.url, more)).status, 200)
        const merged = await getJson<Summary>(second.url, '/api/topology')
        assert.equal(merged.edges.find((e) => e.id === 'service:orders-api>kafka:orders')?.count, 121)
      } finally {
        await second.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
