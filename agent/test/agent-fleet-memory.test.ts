/**
 * The fleet view's memory, bounded as a whole: the fleet agent runs in a child process, against a
 * Prometheus stand-in (helpers/fake-prometheus.ts), its resident memory read from /proc. First,
 * every query is answered 30 MiB while views are asked for many at once: each answer is cut at the
 * client's 16 MiB (or where a view's own answers fill the budget: 502, too large), the views past the budget of answers held at once (64 MiB) or past four at once
 * are answered 503 saying so, and the memory stays within the budget's reach. Then valid answers
 * of 20,000 series each (5 MiB): the view is built, and once it is no longer reused, the memory
 * returns near where it started. Last, in this process with a budget of 4 MiB: a view whose own
 * answers would together pass the budget, none of them alone, is read in shards, not refused.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { PrometheusSource } from '../src/prometheus/fleet.js'
import { summary } from '../src/views/api.js'
import { killAgentProcesses, startAgentProcess, waitFor, type AgentProcess } from './helpers/agent-process.js'
import { seriesAnswer, startFakePrometheus, type FakePrometheus } from './helpers/fake-prometheus.js'

const MIB = 1024 * 1024
/** Views asked for at once, round after round: the page's and `top`'s ranges, edges, transactions. */
const PATHS = ['/api/summary?range=60', '/api/summary?range=300', '/api/summary?range=900', '/api/summary?range=3600', '/api/lag?range=120', '/api/edge?id=x', '/api/transactions', '/api/topology?range=600']
const ROUNDS = 4

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

describe('the fleet view under large answers from Prometheus', { timeout: 180_000 }, () => {
  let fake: FakePrometheus
  let view: AgentProcess
  let start: number

  before(async () => {
    fake = await startFakePrometheus(() => '{}')
    view = await startAgentProcess('--prometheus', fake.url)
    // Warm: the first request loads the code a view runs.
    fake.answer = (path, form) => seriesAnswer(path, 10, form.get('query') ?? '')
    assert.equal((await fetch(`${view.url}/api/summary`)).status, 200)
    await sleep(2000)
    start = rssMiB(view.child.pid!)
  })

  after(async () => {
    killAgentProcesses()
    await fake?.close()
  })

  test('answers of 30 MiB to views at once: 503 past the budget, memory within its reach', async () => {
    const huge = seriesAnswer('/api/v1/query', 130_000)
    const hugeMatrix = seriesAnswer('/api/v1/query_range', 130_000)
    assert.ok(huge.length > 30 * MIB && hugeMatrix.length > 30 * MIB)
    // 30 MiB to every query, shard or not: as if Prometheus held 16 times that.
    fake.answer = (path) => (path.startsWith('/api/v1/query_range') ? hugeMatrix : huge)
    let peak = start
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(view.child.pid!))), 20)
    const statuses = new Map<number, number>()
    const reasons = new Set<string>()
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await Promise.all(
          PATHS.map(async (path) => {
            const res = await fetch(`${view.url}${path}`)
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
            const body = (await res.json()) as { error: string; prometheus: string }
            assert.equal(body.prometheus, fake.url)
            if (res.status === 503) {
              assert.equal(res.headers.get('retry-after'), '1')
              reasons.add(body.error.replace(/\d+(\.\d+)? MiB held/, 'N MiB held'))
            } else {
              assert.equal(res.status, 502, body.error)
              // Too large even in 256 shards: one answer, or the view's answers together.
              assert.match(body.error, /larger than 16777216 bytes|the answers of one view would hold more than the fleet view's budget of 64 MiB/)
            }
          }),
        )
      }
    } finally {
      clearInterval(sampler)
    }
    console.log(`RSS ${start.toFixed(0)} MiB at the start, ${peak.toFixed(0)} MiB at the peak; answers ${JSON.stringify([...statuses])}; ${fake.queries} queries`)
    assert.ok((statuses.get(503) ?? 0) > 0, 'views past the limits are refused')
    assert.ok(
      [...reasons].some((r) => r.startsWith("busy: the answers being read from Prometheus would hold more than the fleet view's budget of 64 MiB")),
      [...reasons].join('\n'),
    )
    // The budget (64 MiB of answers) and the answers cut short not yet freed: a few times the budget, never the GBs of unbounded views.
    assert.ok(peak - start < 320, `RSS grew from ${start.toFixed(0)} to ${peak.toFixed(0)} MiB`)
  })

  test('valid answers of 20,000 series: the view is built, and once dropped the memory returns near its start', async () => {
    assert.ok(seriesAnswer('/api/v1/query', 20_000).length > 4 * MIB)
    fake.answer = (path, form) => seriesAnswer(path, 20_000, form.get('query') ?? '')
    let peak = 0
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(view.child.pid!))), 20)
    try {
      const res = await fetch(`${view.url}/api/status?range=1800`)
      assert.equal(res.status, 200)
      // The view's store holds what --max-series allows.
      assert.equal(((await res.json()) as { series: number }).series, 10_000)
    } finally {
      clearInterval(sampler)
    }
    fake.answer = () => '{}'
    // Kept while reused (as long as it took to build), then dropped, and a full collection gives its memory back; the allocator keeps some.
    const settled = await waitFor('the memory to come back', () => sleep(1000).then(() => rssMiB(view.child.pid!)), (rss) => rss - start < 120, 90_000).catch(() => rssMiB(view.child.pid!))
    console.log(`RSS ${start.toFixed(0)} MiB at the start, ${peak.toFixed(0)} MiB at the peak, ${settled.toFixed(0)} MiB after`)
    assert.ok(peak - settled > 200, `the peak (${peak.toFixed(0)} MiB) was the view's`)
    assert.ok(settled - start < 120, `RSS ${settled.toFixed(0)} MiB after, ${start.toFixed(0)} MiB at the start`)
  })

  test("a view whose own answers would together pass the budget, none alone, is read in shards, not refused", async () => {
    const answer = seriesAnswer('/api/v1/query', 10_000)
    assert.ok(answer.length > 2 * MIB && answer.length < 4 * MIB)
    // The stats families' answers large; the rest (offsets, failed sends, payload counts) none.
    const stats = /pathwise_(edge_latency|pathway_latency|payload_size)/
    fake.answer = (path, form) => {
      const query = form.get('query') ?? ''
      return seriesAnswer(path, stats.test(query) && !path.startsWith('/api/v1/query_range') ? 10_000 : 0, query)
    }
    // Five answers of a family at once, each under the 4 MiB cap: 12 MiB, past the 4 MiB budget.
    const source = new PrometheusSource({ url: fake.url, maxBytes: 4 * MIB, budgetBytes: 4 * MIB, windowMs: 3_600_000, maxSeries: 20_000, status: () => ({}) as never })
    const before = fake.queries
    const s = summary(await source.context(new URL('/api/summary?range=1800', 'http://view')), 1800)
    assert.equal(new Set(s.edges.map((e) => e.topic)).size, 50, "every topic of the answers' series")
    assert.ok(fake.queries - before > 3 * 16 * 5, `read in shards: ${fake.queries - before} queries`)
    assert.equal(source.client.budget.held, 0, 'every answer given back')
  })
})
