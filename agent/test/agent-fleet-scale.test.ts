/**
 * A 10,000-series pipeline through a real Prometheus: one agent takes 200 services' payloads of 50
 * stats points each (its --max-series, 10,000 series), Debian's Prometheus scrapes it, and the
 * fleet view (`pathwise agent --prometheus`) draws the whole of it, as the agent does: every label
 * set is in /metrics (the default --max-metric-series is the store's cap), and the view holds the
 * same 10,000 series, edges and message counts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, type PointSpec } from './helpers/agent-fixtures.js'
import { killAgentProcesses, startAgentProcess, waitFor, type AgentProcess } from './helpers/agent-process.js'
import { readmePrometheusConfig, startPrometheus, withTargets, type RunningPrometheus } from './helpers/prometheus.js'

const SERVICES = 200
const POINTS = 50

/**
 * Service s's points: consumers of the topics of service s - 1 (chained by parent hash) and
 * producers to its own five topics. Each point's messages have one latency and one size, so that
 * a label set writes few buckets and Prometheus holds some 120,000 series, not millions.
 */
function servicePoints(s: number): PointSpec[] {
  const hash = (svc: number, j: number): bigint => BigInt(svc * 1000 + j + 1) * 0x9e3779b1n
  return Array.from({ length: POINTS }, (_, j) => {
    const consume = j % 2 === 0
    const topic = consume ? `t${s - 1}-${(j >> 1) % 5}` : `t${s}-${(j >> 1) % 5}`
    const tags = consume ? ['direction:in', `group:g${s}`, `topic:${topic}`, 'type:kafka'] : ['direction:out', `topic:${topic}`, 'type:kafka']
    const n = 1 + ((s * 7 + j) % 9)
    const latency = 0.001 * (1 + ((s + j) % 40))
    return { tags, hash: hash(s, j), parent: consume && s > 0 ? hash(s - 1, j + 1) : consume ? 0n : hash(s, j - 1), edge: new Array<number>(n).fill(latency), pathway: new Array<number>(n).fill(latency * 3), size: new Array<number>(n).fill(500) }
  })
}

describe('a 10,000-series pipeline through a real Prometheus', { timeout: 240_000 }, () => {
  let prometheus: RunningPrometheus
  let agent: RunningAgent
  let view: AgentProcess
  let single: Summary

  before(async () => {
    agent = await startAgent({ port: 0, log: () => {} })
    const startMs = Date.now() - (Date.now() % 10_000) - 20_000
    for (let s = 0; s < SERVICES; s++) assert.equal((await postStats(agent.url, pathwisePayload(`svc-${s}`, [{ startMs, points: servicePoints(s) }]))).status, 200)
    single = await getJson<Summary>(agent.url, '/api/summary')
    // The README's configuration, scraping every 5 s, this agent its target.
    prometheus = await startPrometheus(withTargets(readmePrometheusConfig(), [`127.0.0.1:${agent.port}`]).replace(/scrape_interval: \S+/, 'scrape_interval: 5s'))
    const promUrl = prometheus.url
    view = await startAgentProcess('--prometheus', promUrl)
    const messages = single.edges.reduce((n, e) => n + e.count, 0)
    await waitFor(
      'Prometheus to scrape every label set',
      () =>
        fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: 'sum(pathwise_edge_latency_seconds_count)' })}`).then(
          (r) => r.json() as Promise<{ data?: { result: Array<{ value: [number, string] }> } }>,
          () => null,
        ),
      (a) => Number(a?.data?.result[0]?.value[1]) === messages,
      120_000,
    )
  })

  after(async () => {
    killAgentProcesses()
    await prometheus?.stop()
    await agent?.close()
  })

  test("every label set in the agent's /metrics, and the fleet view draws all 10,000 series as the agent does", async () => {
    assert.equal(single.status.series, SERVICES * POINTS)
    const text = await (await fetch(`${agent.url}/metrics`)).text()
    assert.equal([...text.matchAll(/^pathwise_edge_latency_seconds_count\{/gm)].length, SERVICES * POINTS)
    assert.match(text, /^pathwise_metrics_points_dropped_total 0$/m)
    const fleet = await getJson<Summary>(view.url, '/api/summary')
    assert.equal(fleet.status.series, single.status.series)
    assert.equal(fleet.edges.length, single.edges.length)
    assert.deepEqual(
      fleet.edges.map((e) => [e.id, e.count]),
      single.edges.map((e) => [e.id, e.count]),
    )
    assert.deepEqual(
      fleet.nodes.map((n) => n.id),
      single.nodes.map((n) => n.id),
    )
    assert.equal(fleet.pathways.length, single.pathways.length)
  })
})
