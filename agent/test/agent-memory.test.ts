/**
 * An hour of 10,000 series in an agent with its defaults, within 1 GiB: the load bench's services
 * (bench/agent-load/services.ts: 200 services of 50 points, their sketches as pathwise's core makes
 * them) send an hour of buckets, one bucket more each round (compressed stamps, as the bench's
 * hour run does), to an agent process whose resident memory is read from /proc throughout. Every
 * point is kept: none dropped at a cap, none out of the window, and the page's hour reads them all.
 * The payloads are stored rather than compressed (gzip level 0): what the agent holds is the same,
 * and the test spends its time in the agent rather than in compressing 10 GB.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { after, test } from 'node:test'
import { fleet, finishedBucket } from '../../bench/agent-load/services.js'
import type { Status, Summary } from '../src/views/api.js'
import { STATS_HEADERS } from './helpers/agent-fixtures.js'
import { killAgentProcesses, startAgentProcess } from './helpers/agent-process.js'

after(killAgentProcesses)

const SERVICES = 200
const POINTS = 50
/** An hour of 10 s buckets, less a few: the oldest must still be in the window when it is sent. */
const BUCKETS = 356
const RSS_BOUND_MIB = 1024
/** Payloads sent at once. */
const CONCURRENCY = 8

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

function post(agent: http.Agent, url: URL, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: '/v0.1/pipeline_stats', method: 'POST', agent, headers: { ...STATS_HEADERS, 'Content-Length': body.length } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('an hour of 10,000 series: every point kept, the agent under 1 GiB', { timeout: 30 * 60_000 }, async () => {
  const agent = await startAgentProcess()
  const pid = agent.child.pid!
  let peak = rssMiB(pid)
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 200)
  const url = new URL(agent.url)
  const client = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  try {
    const services = fleet({ services: SERVICES, points: POINTS }, 0)
    const first = finishedBucket(Date.now()) - BUCKETS + 1
    const jobs = function* () {
      for (let b = 0; b < BUCKETS; b++) for (let s = 0; s < SERVICES; s++) yield [s, first + b] as const
    }
    const queue = jobs()
    const statuses = new Map<number, number>()
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let next = queue.next(); !next.done; next = queue.next()) {
          const [service, bucket] = next.value
          const status = await post(client, url, services.payload(service, bucket))
          statuses.set(status, (statuses.get(status) ?? 0) + 1)
        }
      }),
    )
    assert.deepEqual([...statuses], [[200, BUCKETS * SERVICES]])
    const status = (await (await fetch(`${agent.url}/api/status`)).json()) as Status
    peak = Math.max(peak, rssMiB(pid))
    assert.deepEqual(
      { received: status.points.received, dropped: status.points.dropped, outOfWindow: status.points.outOfWindow, series: status.series },
      { received: BUCKETS * SERVICES * POINTS, dropped: 0, outOfWindow: 0, series: SERVICES * POINTS },
    )
    assert.ok(peak < RSS_BOUND_MIB, `the agent's resident memory reached ${peak.toFixed(0)} MiB`)
    // 10 s buckets for the last 16 minutes by the clock, minutes before them: 140 cells a series once an
    // hour has passed, fewer while the test's last buckets are still younger than 16 minutes.
    assert.ok(status.cells >= 100 * SERVICES * POINTS && status.cells <= 145 * SERVICES * POINTS, `${status.cells} cells`)
    const summary = (await (await fetch(`${agent.url}/api/summary?range=3600`)).json()) as Summary
    assert.equal(summary.nodes.filter((n) => n.kind === 'service').length, SERVICES)
    process.stdout.write(`# peak RSS ${peak.toFixed(0)} MiB, ${status.cells} cells\n`)
  } finally {
    clearInterval(sampler)
    client.destroy()
    agent.child.kill('SIGTERM')
    await agent.exited
  }
})
