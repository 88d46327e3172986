/**
 * Agents as collectors, Prometheus as the store: Debian's Prometheus (/usr/bin/prometheus) scrapes
 * two agents every second, each fed half of the pipeline's services; a third agent is fed all of
 * them and is not scraped. The fleet view (`pathwise agent --prometheus URL`) must show the same
 * nodes, edges and pathways as the single agent, with the same counts, rates within 5%, quantiles
 * within the error the README states, and the same Kafka lag, of two clusters too, queue depths
 * (the highest of the agents) and failed sends (summed over the agents); names as odd as
 * tracers may send (empty, lone surrogates, 1 KB, quotes, backslashes, newlines) come back the
 * same; a first producer's edge has no latency in both; transactions are read from Prometheus; the
 * agents' /metrics pass `promtool check metrics`. Prometheus is then stopped: the view answers 502
 * naming it, and `pathwise top` says so. Then the PromQL client against a Prometheus that is slow,
 * trickles, answers without end, or answers garbage.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { edgeDetail, summary, type EdgeDetail, type Summary } from '../src/views/api.js'
import type { TransactionsView } from '../src/views/transactions.js'
import { BUCKETS_PER_OCTAVE } from '../src/prometheus/histogram.js'
import { POINT_LABELS } from '../src/prometheus/labels.js'
import { PrometheusSource } from '../src/prometheus/fleet.js'
import { PromqlClient, PromqlError } from '../src/prometheus/promql.js'
import { rangeOf } from '../src/model/range.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { exportPayload, getJson, pathwisePayload, postStats, trackedBuckets } from './helpers/agent-fixtures.js'
import { pipelineBucket, type ServicePayload } from './helpers/agent-pipeline.js'
import { killAgentProcesses, runBin, startAgentProcess, waitFor, type AgentProcess } from './helpers/agent-process.js'
import { freePort, readmePrometheusConfig, startPrometheus, withTargets, type RunningPrometheus } from './helpers/prometheus.js'

const PROMTOOL = '/usr/bin/promtool'
/** README "Many hosts": a bucket's geometric middle is within 2^(1/16) of its values, and re-binning it adds the sketch's 1%. */
const QUANTILE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_OCTAVE)) * 1.01 - 1
const RANGE_S = 60
const N = 120

/** Names a tracer may send, as services, envs and topics: they come back from Prometheus as they went in. */
const ODD_NAMES = ['', 'odd-\ud800', 'odd-\udc00', 'k'.repeat(1024), 'say "hi"', 'back\\slash\\', 'new\nline', 'mark-\uffff0041', 'nul-\u0000']
const HALF_A = new Set(['orders-api', 'mailer', 'aggregator', ...ODD_NAMES.filter((_, i) => i % 2 === 0)])

async function promQuery(base: string, query: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query })}`)
  const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }
  return body.data.result
}

/** The same bucket of a pipeline as each service would send it, over six 10 s buckets, with Kafka offsets. */
function pipeline(from: number): ServicePayload[] {
  const byService = new Map<string, ServicePayload>()
  for (let i = 0; i < RANGE_S / 10; i++) {
    const startMs = from + i * 10_000
    for (const p of pipelineBucket(startMs, N, i + 1).payloads) {
      const mine = byService.get(p.service) ?? { service: p.service, buckets: [] }
      byService.set(p.service, mine)
      mine.buckets.push(...p.buckets)
    }
    const produced = 1000 + 400 * i
    byService.get('orders-api')!.buckets.push({ startMs, backlogs: [{ tags: ['type:kafka_produce', 'topic:orders', 'partition:0'], value: produced }] })
    // The analytics group's partition 1 has no producer reporting: its end is the high watermark its consumer fetched.
    byService.get('analytics')!.buckets.push({
      startMs,
      backlogs: [
        { tags: ['type:kafka_high_watermark', 'topic:orders', 'partition:1'], value: 500 + 100 * i },
        { tags: ['type:kafka_commit', 'consumer_group:analytics', 'topic:orders', 'partition:1'], value: 480 + 100 * i },
      ],
    })
    byService.get('billing')!.buckets.push({
      startMs,
      backlogs: [{ tags: ['type:kafka_commit', 'consumer_group:billing', 'topic:orders', 'partition:0'], value: produced - 50 - 10 * i }],
    })
    // The same group, topic and partition on two clusters, 900 and 5 messages behind: two lags.
    const audit = byService.get('audit') ?? { service: 'audit', buckets: [] }
    byService.set('audit', audit)
    audit.buckets.push({
      startMs,
      backlogs: (['east', 'west'] as const).flatMap((cluster) => {
        const end = (cluster === 'east' ? 2000 : 20) + i
        const tags = ['topic:events', 'partition:0', `kafka_cluster_id:${cluster}`]
        return [
          { tags: ['type:kafka_high_watermark', ...tags], value: end },
          { tags: ['type:kafka_commit', 'consumer_group:audit', ...tags], value: end - (cluster === 'east' ? 900 : 5) },
        ]
      }),
    })
    // The invoices queue's depth, sampled by its consumer (half A) and by a watcher (half B): the highest counts; delayed messages are no lag.
    const depth = (state: string, value: number) => ({ tags: ['type:queue_depth', 'queue_type:sqs', 'topic:invoices', `state:${state}`], value })
    byService.get('mailer')!.buckets.push({ startMs, backlogs: [depth('ready', 30 + i), depth('delayed', 7)] })
    const watcher = byService.get('invoices-watch') ?? { service: 'invoices-watch', buckets: [] }
    byService.set('invoices-watch', watcher)
    watcher.buckets.push({ startMs, backlogs: [depth('ready', 40 + i)] })
    // Sends of billing's that failed (another host of billing reports more: FAILED_ELSEWHERE).
    byService.get('billing')!.buckets.push({ startMs, backlogs: [failedSends('sqs', 'invoices', 2)] })
    // First producers (edge latency 0: no latency) with odd names, and a failed send each.
    ODD_NAMES.forEach((name, k) => {
      const odd = byService.get(name) ?? { service: name, env: ODD_NAMES[(k + 1) % ODD_NAMES.length], buckets: [] }
      byService.set(name, odd)
      odd.buckets.push({
        startMs,
        points: [{ tags: ['direction:out', `topic:t-${name}`, 'type:kafka'], hash: 0x7000n + BigInt(k), edge: [0, 0, 0], pathway: [0, 0, 0] }],
        backlogs: [failedSends('kafka', `t-${name}`, 1)],
      })
    })
  }
  return [...byService.values()]
}

const failedSends = (transport: string, topic: string, value: number) => ({ tags: ['type:pathwise_failed_sends', `topic:${topic}`, `transport:${transport}`], value })

/** A second host of billing, reporting to the other agent: its failed sends add up with billing's. */
const FAILED_ELSEWHERE = (from: number): ServicePayload => ({ service: 'billing', buckets: [{ startMs: from, backlogs: [failedSends('sqs', 'invoices', 5)] }] })

/** Whether two answers have the same keys and value types, recursively; null stands for any value (a latency or rate not known yet). */
function sameShape(a: unknown, b: unknown, path = 'answer'): void {
  if (a === null || b === null) return
  if (Array.isArray(a) || Array.isArray(b)) {
    assert.ok(Array.isArray(a) && Array.isArray(b), `${path}: an array in one answer only`)
    for (let i = 0; i < Math.min(a.length, b.length); i++) sameShape(a[i], b[i], `${path}[${i}]`)
    return
  }
  assert.equal(typeof a, typeof b, `${path}: types differ`)
  if (typeof a !== 'object') return
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  assert.deepEqual(Object.keys(x).sort(), Object.keys(y).sort(), `${path}: keys differ`)
  for (const k of Object.keys(x)) sameShape(x[k], y[k], `${path}.${k}`)
}

function within(actual: number, expected: number, relative: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= relative * Math.abs(expected), `${what}: ${actual} is not within ${(relative * 100).toFixed(1)}% of ${expected}`)
}

function sameQuantiles(fleet: { p50: number; p99: number } | null, single: { p50: number; p99: number } | null, what: string): void {
  assert.equal(fleet === null, single === null, `${what}: latency present in one view only`)
  if (!fleet || !single) return
  within(fleet.p50, single.p50, QUANTILE_ERROR, `${what} p50`)
  within(fleet.p99, single.p99, QUANTILE_ERROR, `${what} p99`)
}

describe('the fleet view over a real Prometheus', { timeout: 90_000 }, () => {
  let prometheus: RunningPrometheus
  let promUrl: string
  const agents: RunningAgent[] = []
  let view: AgentProcess
  let single: Summary
  let fleet: Summary
  let sent: ServicePayload[]

  before(async () => {
    // The agent fed everything reads its range at one moment, however long the feeding takes on a loaded machine.
    const frozen = Date.now()
    const [a, b, whole] = await Promise.all([startAgent({ port: 0, log: () => {} }), startAgent({ port: 0, log: () => {} }), startAgent({ port: 0, log: () => {}, now: () => frozen })])
    agents.push(a, b, whole)
    // The README's configuration, scraping every second (it says 10 s), with the two halves as targets.
    const config = readmePrometheusConfig()
    assert.match(config, /^    scrape_interval: 10s$/m, 'the README says how often to scrape')
    const fast = withTargets(config, [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]).replace(/scrape_interval: \S+/, 'scrape_interval: 1s')
    prometheus = await startPrometheus(`global:\n  scrape_timeout: 1s\n${fast}`)
    promUrl = prometheus.url
    view = await startAgentProcess('--prometheus', promUrl)

    // Six whole buckets: the single agent's range.
    const range = rangeOf(frozen, RANGE_S * 1000)
    sent = pipeline(range.from)
    for (const p of sent) {
      const body = pathwisePayload(p.service, p.buckets, p.env)
      for (const agent of [HALF_A.has(p.service) ? a : b, whole]) assert.equal((await postStats(agent.url, body)).status, 200)
    }
    const elsewhere = FAILED_ELSEWHERE(range.from)
    for (const agent of [HALF_A.has('billing') ? b : a, whole]) assert.equal((await postStats(agent.url, pathwisePayload(elsewhere.service, elsewhere.buckets))).status, 200)
    sent.push(elsewhere)
    single = await getJson<Summary>(whole.url, `/api/summary?range=${RANGE_S}`)

    // Transactions: ids whose checkpoints all reach one agent (an agent pairs what it sees).
    const t0 = frozen - 40_000
    for (const [half, agent] of [[0, a], [1, b]] as const) {
      const calls: Array<[string, string, number]> = []
      for (let i = half * 100; i < half * 100 + 100; i++) calls.push([`order-${i}`, 'received', t0 + i], [`order-${i}`, 'shipped', t0 + i + 200 + 10 * (i % 50)])
      const body = exportPayload('orders-api', trackedBuckets(calls))
      for (const to of [agent, whole]) assert.equal((await postStats(to.url, body)).status, 200)
    }

    const messages = single.edges.reduce((sum, e) => sum + e.count, 0)
    const backlogs = [...whole.store.backlogs()]
    const offsets = backlogs.filter((b) => b.kind !== 'queue_depth').length
    // Each agent's depths of a queue and state: two of 'ready', one of 'delayed'.
    const depths = 3
    const failed = [...whole.store.failedSends()].reduce((n, f) => n + [...f.counts.values()].reduce((a, b) => a + b, 0), 0)
    // The payloads too: the transactions' came last, and a scrape may have had every message but not them.
    const payloads = sent.length + 2
    await waitFor(
      'Prometheus to scrape every message, offset, depth, failed send and payload',
      async () =>
        Promise.all(
          [
            'sum(pathwise_edge_latency_seconds_count)',
            'count(pathwise_kafka_offset)',
            'count(pathwise_queue_depth)',
            'sum(pathwise_failed_sends_total)',
            'sum(pathwise_intake_payloads_total{result="accepted"})',
          ].map(async (q) => Number((await promQuery(promUrl, q))[0]?.value[1])),
        ),
      (counts) => counts.join() === [messages, offsets, depths, failed, payloads].join(),
      30_000,
    )
    fleet = await getJson<Summary>(view.url, `/api/summary?range=${RANGE_S}`)
  })

  after(async () => {
    killAgentProcesses()
    await prometheus?.stop()
    await Promise.all(agents.map((a) => a.close()))
  })

  test('the same nodes, edges and pathways, with the same counts', () => {
    assert.ok(single.edges.length >= 7 && single.pathways.length >= 3, 'the single agent sees the pipeline')
    assert.deepEqual(
      fleet.edges.map((e) => [e.id, e.from, e.to, e.kind, e.type, e.topic, e.group, e.count]),
      single.edges.map((e) => [e.id, e.from, e.to, e.kind, e.type, e.topic, e.group, e.count]),
    )
    assert.deepEqual(
      fleet.pathways.map((p) => [p.id, p.nodes, p.service, p.approximate, p.complete, p.count]),
      single.pathways.map((p) => [p.id, p.nodes, p.service, p.approximate, p.complete, p.count]),
    )
    assert.deepEqual(
      fleet.nodes.map((n) => n.id),
      single.nodes.map((n) => n.id),
    )
    // Neither half alone can chain a pathway from orders-api to mailer: the hops are on different agents.
    assert.ok(fleet.pathways.some((p) => p.nodes[0] === 'service:orders-api' && p.service === 'mailer' && p.complete))
  })

  test('rates within 5%, p50 and p99 within the stated error', () => {
    assert.ok(QUANTILE_ERROR < 0.055)
    for (const [i, e] of single.edges.entries()) {
      within(fleet.edges[i].rate, e.rate, 0.05, `${e.id} rate`)
      sameQuantiles(fleet.edges[i].latency, e.latency, `${e.id} latency`)
      sameQuantiles(fleet.edges[i].payloadSize, e.payloadSize, `${e.id} payload size`)
    }
    for (const [i, p] of single.pathways.entries()) {
      within(fleet.pathways[i].rate, p.rate, 0.05, `pathway to ${p.service} rate`)
      sameQuantiles(fleet.pathways[i].latency, p.latency, `pathway ${p.nodes.join(' > ')}`)
    }
    for (const [i, n] of single.nodes.entries()) {
      within(fleet.nodes[i].inRate, n.inRate, 0.05, `${n.id} in`)
      within(fleet.nodes[i].outRate, n.outRate, 0.05, `${n.id} out`)
      if (n.p99 !== null) within(fleet.nodes[i].p99 ?? NaN, n.p99, QUANTILE_ERROR, `${n.id} p99`)
    }
  })

  test('the same Kafka lag, of two clusters too, and the same shapes in /api/*', () => {
    // (Lag in seconds reads the offsets' history, which Prometheus sees only as tracers flush it: agent-fleet-lag.test.ts.)
    assert.deepEqual(
      fleet.lag.map((r) => [r.group, r.topic, r.partition, r.cluster, r.produceOffset, r.highWatermark, r.commitOffset, r.lagMessages]),
      single.lag.map((r) => [r.group, r.topic, r.partition, r.cluster, r.produceOffset, r.highWatermark, r.commitOffset, r.lagMessages]),
    )
    assert.deepEqual(
      single.lag.map((r) => [r.group, r.partition, r.cluster, r.lagMessages]),
      [
        ['analytics', '1', '', 20],
        ['audit', '0', 'east', 900],
        ['audit', '0', 'west', 5],
        ['billing', '0', '', 100],
      ],
    )
    const { status: fleetStatus, ...fleetRest } = fleet
    const { status: singleStatus, ...singleRest } = single
    sameShape(fleetRest, singleRest)
    assert.deepEqual(Object.keys(fleetStatus).sort(), Object.keys(singleStatus).sort())
    assert.equal(fleetStatus.prometheus, promUrl)
    assert.equal(singleStatus.prometheus, null)
    assert.equal(fleetStatus.payloads.accepted, sent.length + 2, 'the payloads both halves took (and one of transactions each)')
  })

  test("a queue's depth on its consume edge (the highest of the agents, delayed messages left out) and node and failed sends on their produce edges (summed), as in one agent", () => {
    const mailer = (s: Summary) => s.edges.find((e) => e.kind === 'consume' && e.type === 'sqs' && e.topic === 'invoices')!
    assert.equal(single.lag.length, 4, 'a queue is no row of the Kafka lag')
    assert.equal(mailer(single).lag?.messages, 45)
    assert.equal(mailer(fleet).lag?.messages, 45)
    within(mailer(fleet).lag?.seconds ?? NaN, mailer(single).lag?.seconds ?? NaN, 0.05, 'the queue lag in seconds, at the edge rate')
    // The queue's node carries the latest count of each state (views/queue-jobs.ts), from Prometheus too.
    const jobs = (s: Summary) => s.nodes.find((n) => n.id === 'sqs:invoices')?.jobs
    assert.deepEqual(jobs(single), { ready: 45, delayed: 7 })
    assert.deepEqual(jobs(fleet), jobs(single))
    const failedOf = (s: Summary) => s.edges.filter((e) => e.failedSends !== undefined).map((e) => [e.id, e.failedSends])
    assert.deepEqual(failedOf(single).find(([id]) => id === 'service:billing>sqs:invoices'), ['service:billing>sqs:invoices', 6 * 2 + 5])
    assert.equal(failedOf(single).length, 1 + ODD_NAMES.length, "billing's and each odd name's")
    assert.deepEqual(failedOf(fleet), failedOf(single))
  })

  test("an edge's chart and lag history from Prometheus", async () => {
    const id = 'kafka:orders>service:billing#billing'
    const detail = await waitFor(
      'the chart to hold every message',
      () => getJson<EdgeDetail>(view.url, `/api/edge?id=${encodeURIComponent(id)}&range=${RANGE_S}`),
      (d) => d.buckets.reduce((sum, b) => sum + b.count, 0) === d.edge.count,
      20_000,
    )
    const mine = single.edges.find((e) => e.id === id)!
    assert.equal(detail.edge.count, mine.count)
    assert.ok(detail.buckets.every((b) => b.count === 0 || b.latency !== null))
    assert.ok(detail.lagHistory.length === 1 && detail.lagHistory[0].points.length > 0)
    const missing = await fetch(`${view.url}/api/edge?id=nothing`)
    assert.equal(missing.status, 404)
  })

  test("the page is served, and /metrics names follow Prometheus's conventions", async () => {
    assert.equal((await fetch(`${view.url}/`)).status, 200)
    const text = await (await fetch(`${agents[1].url}/metrics`)).text()
    for (const family of ['pathwise_edge_latency_seconds', 'pathwise_pathway_latency_seconds', 'pathwise_payload_size_bytes']) {
      assert.match(text, new RegExp(`# TYPE ${family} histogram`))
      assert.match(text, new RegExp(`${family}_bucket\\{[^}]*le="\\+Inf"\\}`))
    }
    assert.match(text, /# TYPE pathwise_kafka_offset gauge/)
    assert.match(text, /# TYPE pathwise_intake_payloads_total counter/)
    // A consumer's series: every label but the empty ones (Prometheus reads an empty label as none), in order.
    const labels = /pathwise_edge_latency_seconds_count\{([^}]*group="billing"[^}]*)\}/.exec(text)![1]
    assert.deepEqual(
      [...labels.matchAll(/(\w+)="/g)].map((m) => m[1]),
      POINT_LABELS.filter((l) => l !== 'kafka_cluster_id' && l !== 'edge_tags'),
    )
  })

  test('a range that starts after the burst counts none of it: a series or failed-send counter older than the range is counted from its value then', async () => {
    const later = await waitFor(
      'the burst to be older than 10 s',
      () => getJson<Summary>(view.url, '/api/summary?range=10'),
      (s) => s.edges.length > 0 && s.edges.every((e) => e.count === 0),
      40_000,
    )
    assert.deepEqual(
      later.edges.map((e) => e.id),
      single.edges.map((e) => e.id),
    )
    assert.equal(later.pathways.length, 0, 'no pathway has messages in the range')
    // The failed-send counters were there before the range began: none of their sends is in it.
    assert.deepEqual(later.edges.filter((e) => e.failedSends !== undefined), [])
  })

  test("the README's PromQL answers: lag per group and partition, p99 per consumer group", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const block = /```promql\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('### Many hosts')))?.[1] ?? ''
    // Queries are separated by their comment lines.
    const queries = block
      .split(/^#.*$/m)
      .map((q) => q.trim())
      .filter(Boolean)
    assert.equal(queries.length, 2)
    // rate() needs two scrapes of a series.
    const p99 = await waitFor('two scrapes of every series', () => promQuery(promUrl, queries[0]), (r) => r.length === 4, 15_000)
    const lag = await promQuery(promUrl, queries[1])
    assert.deepEqual(p99.map((r) => `${r.metric.topic}/${r.metric.group ?? ''}`).sort(), ['clicks/', 'invoices/', 'orders/analytics', 'orders/billing'])
    assert.deepEqual(
      lag.map((r) => [r.metric.consumer_group, r.metric.topic, r.metric.partition, r.metric.kafka_cluster_id ?? '', Number(r.value[1])]).sort(),
      single.lag.map((r) => [r.group, r.topic, r.partition, r.cluster, r.lagMessages]).sort(),
    )
  })

  test('two clusters: two lag series in the agent\'s /metrics, told apart by kafka_cluster_id', async () => {
    const text = await (await fetch(`${agents[1].url}/metrics`)).text()
    for (const [cluster, lag] of [['east', 900], ['west', 5]] as const) {
      assert.ok(text.includes(`pathwise_kafka_lag_messages{consumer_group="audit",topic="events",partition="0",kafka_cluster_id="${cluster}"} ${lag}\n`), text)
    }
  })

  test('odd names come back from Prometheus as they went in; a first producer\'s edge has no latency in both views', () => {
    const services = (s: Summary): string[] => s.nodes.filter((n) => n.kind === 'service').map((n) => n.name)
    for (const name of ODD_NAMES) {
      assert.ok(services(single).includes(name), `the agent keeps ${JSON.stringify(name)}`)
      assert.ok(services(fleet).includes(name), `the fleet view shows ${JSON.stringify(name)}`)
      // The agent's own edge id (tags are read as UTF-8: a lone surrogate in a topic is U+FFFD already in the agent).
      const mine = single.edges.find((e) => e.from === `service:${name}`)
      const theirs = fleet.edges.find((e) => e.id === mine?.id)
      assert.ok(mine && theirs, `service:${name}`)
      assert.deepEqual([theirs.count, theirs.latency, theirs.payloadSize !== null], [mine.count, null, true])
      assert.equal(mine.latency, null)
    }
    assert.deepEqual(services(fleet), services(single))
  })

  test("the header's counts: the fleet's payloads, and when the last arrived", () => {
    assert.ok(fleet.status.lastPayloadAt !== null && single.status.lastPayloadAt !== null, 'a payload time in both')
    // The agents' own clocks (the fleet's) against the frozen one (the single agent's): within the minute the test took.
    assert.ok(Math.abs(fleet.status.lastPayloadAt - Date.now()) < 120_000, `${fleet.status.lastPayloadAt}`)
    assert.equal(fleet.status.payloads.accepted, sent.length + 2)
  })

  test('transactions from Prometheus: the same pairs and counts as the agent fed them all, latencies within the stated error', async () => {
    const mine = await getJson<TransactionsView>(agents[2].url, `/api/transactions?range=${RANGE_S}`)
    const theirs = await getJson<TransactionsView>(view.url, `/api/transactions?range=${RANGE_S}`)
    assert.deepEqual(
      theirs.pairs.map((p) => [p.from, p.to, p.count]),
      [['received', 'shipped', 200]],
    )
    assert.deepEqual(
      mine.pairs.map((p) => [p.from, p.to, p.count]),
      theirs.pairs.map((p) => [p.from, p.to, p.count]),
    )
    sameQuantiles(theirs.pairs[0].latency, mine.pairs[0].latency, 'received → shipped')
    assert.equal(theirs.pairs[0].buckets.reduce((n, b) => n + b.count, 0), 200)
    assert.deepEqual([theirs.ids.tracked, theirs.ids.max, theirs.counters.records], [mine.ids.tracked, 2 * mine.ids.max, mine.counters.records])
  })

  test('every agent\'s /metrics passes promtool check metrics', async () => {
    for (const agent of agents.slice(0, 2)) {
      const text = await (await fetch(`${agent.url}/metrics`)).text()
      assert.match(text, /pathwise_transaction_latency_seconds_bucket/)
      const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' })
      assert.equal(check.status, 0, check.stdout + check.stderr)
      assert.equal(check.stdout + check.stderr, '')
    }
  })

  test('Prometheus stopped: the view answers 502 naming it, the status too, and pathwise top says so', async () => {
    await prometheus.stop()
    // A range no earlier view cached.
    const res = await fetch(`${view.url}/api/summary?range=120`)
    assert.equal(res.status, 502)
    const body = (await res.json()) as { error: string; prometheus: string }
    assert.equal(body.prometheus, promUrl)
    assert.match(body.error, new RegExp(`^Prometheus at ${promUrl.replace(/\./g, '\\.')} could not be read`))
    assert.equal((await fetch(`${view.url}/api/status`)).status, 502)
    const top = runBin('top', '--once', '--agent', view.url)
    let stderr = ''
    top.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const [code] = (await once(top, 'close')) as [number]
    assert.equal(code, 1)
    assert.match(stderr, new RegExp(`the fleet view at ${view.url.replace(/\./g, '\\.')} cannot read Prometheus at ${promUrl.replace(/\./g, '\\.')}: .*could not be read`))
  })
})

describe('the PromQL client against a hostile Prometheus', { timeout: 60_000 }, () => {
  let server: http.Server
  let base: string
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end()

  before(async () => {
    server = http.createServer((req, res) => {
      req.resume()
      answer(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const client = (): PromqlClient => new PromqlClient({ url: base, timeoutMs: 500, maxBytes: 1024 * 1024 })

  test('no answer, a trickled answer and an endless answer end in a PromqlError', async () => {
    const timers = new Set<NodeJS.Timeout>()
    answer = () => {}
    await assert.rejects(client().instant('up', 0), PromqlError)
    answer = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      const t = setInterval(() => res.write(' '), 50)
      timers.add(t)
      res.on('close', () => clearInterval(t))
    }
    await assert.rejects(client().instant('up', 0), /did not answer within 500 ms/)
    answer = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump)
      }
      pump()
    }
    await assert.rejects(client().instant('up', 0), /larger than 1048576 bytes/)
    answer = (_req, res) => res.writeHead(200, { 'Content-Length': String(2 ** 40) }).end()
    await assert.rejects(client().instant('up', 0), /larger than/)
    for (const t of timers) clearInterval(t)
  })

  test('any answer: a result or a PromqlError, and the view built from it still answers', async () => {
    const labelName = fc.constantFrom(...POINT_LABELS, 'le', 'kind', 'topic', 'partition', 'consumer_group', 'result', '__name__')
    const labelValue = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('+Inf', '1e308', '0', '-1', 'NaN', '0.5', 'produce', 'commit', 'out', 'in', 'kafka', '00000000000000ff'))
    const number = fc.oneof(fc.double(), fc.constantFrom('NaN', '+Inf', '-Inf', '1e308', '-5', '3', 'x'))
    const series = fc.record({
      metric: fc.dictionary(labelName, labelValue, { maxKeys: 10 }),
      value: fc.tuple(fc.double(), number.map(String)),
      values: fc.array(fc.tuple(fc.double({ min: 0, max: 2e9 }), number.map(String)), { maxLength: 5 }),
    })
    const body = fc.oneof(
      fc.record({ status: fc.constant('success'), data: fc.record({ resultType: fc.constantFrom('vector', 'matrix', 'scalar'), result: fc.array(series, { maxLength: 30 }) }) }),
      fc.jsonValue().map((v) => ({ status: 'success', data: v })),
      fc.jsonValue(),
    )
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (answerBody, asRange) => {
        answer = (req, res) => {
          // A well-shaped answer names the result type the endpoint gives.
          const b = answerBody as { data?: { resultType?: string } } | null
          const named = asRange && typeof b === 'object' && b !== null && typeof b.data === 'object' && b.data !== null && 'resultType' in b.data
          const text = JSON.stringify(named ? { ...b, data: { ...b.data, resultType: req.url?.includes('range') ? 'matrix' : 'vector' } } : answerBody)
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(text)
        }
        for (const ask of [() => client().instant('up', 0), () => client().range('up', 0, 60, 10)]) {
          try {
            assert.ok(Array.isArray(await ask()))
          } catch (err) {
            assert.ok(err instanceof PromqlError, String(err))
          }
        }
        const source = new PrometheusSource({ url: base, timeoutMs: 500, maxBytes: 1024 * 1024, windowMs: 3_600_000, maxSeries: 1000, status: () => ({}) as never })
        for (const path of ['/api/summary', '/api/edge?id=service:x>kafka:y']) {
          try {
            const ctx = await source.context(new URL(path, 'http://view'))
            const s = summary(ctx, 60)
            assert.ok(Array.isArray(s.edges))
            edgeDetail(ctx, 'service:x>kafka:y', 60)
          } catch (err) {
            assert.ok(err instanceof PromqlError, String(err))
          }
        }
      }),
      { numRuns: 40 },
    )
  })

  test('a view whose Prometheus cannot be reached answers 502 with the reason', async () => {
    const closed = await freePort()
    const agent = await startAgent({ port: 0, log: () => {}, prometheus: `http://127.0.0.1:${closed}` })
    try {
      const res = await fetch(`${agent.url}/api/summary`)
      assert.equal(res.status, 502)
      assert.match(((await res.json()) as { error: string }).error, /could not be read/)
      assert.equal((await fetch(`${agent.url}/api/status`)).status, 502)
    } finally {
      await agent.close()
    }
  })
})

describe('the cap on label sets in /metrics', () => {
  test('points of label sets past --max-metric-series are not counted, and are counted as dropped', async () => {
    const agent = await startAgent({ port: 0, log: () => {}, maxMetricSeries: 2 })
    try {
      const now = Date.now()
      const startMs = now - (now % 10_000)
      const points = [1n, 2n, 3n].map((hash) => ({ tags: ['direction:out', 'type:kafka', 'topic:t'], hash, edge: [0.01, 0.02] }))
      assert.equal((await postStats(agent.url, pathwisePayload('svc', [{ startMs, points }]))).status, 200)
      const text = await (await fetch(`${agent.url}/metrics`)).text()
      assert.equal([...text.matchAll(/^pathwise_edge_latency_seconds_count\{/gm)].length, 2)
      assert.match(text, /^pathwise_metrics_points_dropped_total 1$/m)
    } finally {
      await agent.close()
    }
  })
})
