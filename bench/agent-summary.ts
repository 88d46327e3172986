/**
 * /api/summary at 10,000 series: what one answer costs the agent's main thread (the summary and its
 * JSON), computed and reused (views/view-cache.ts). The agent (from source, in this process) takes 200 services' payloads
 * of 50 points (bench/agent-load/services.ts) for six buckets, then:
 *   - computing a summary from the store (every time, as before the cache),
 *   - answering GET /api/summary when nothing changed since the last (reused),
 *   - answering it while payloads keep arriving (the page and `top` polling a busy agent): a
 *     summary is computed again once the last one is older than 10 times what it took.
 *   node --import tsx bench/agent-summary.ts          (hold the bench lock: flock /tmp/pathwise-bench.lock …)
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { startAgent } from '../agent/src/server.js'
import { summary, summaryJson, type SummaryBody } from '../agent/src/views/api.js'
import { ViewCache } from '../agent/src/views/view-cache.js'
import { fleet, finishedBucket } from './agent-load/services.js'

const SERVICES = 200
const POINTS = 50
const ROUNDS = 10

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]
const ms = (xs: number[]): string => `p50 ${quantile(xs, 0.5).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`

const agent = await startAgent({ port: 0, log: () => {} })
const services = fleet({ services: SERVICES, points: POINTS })
const last = finishedBucket(Date.now())
// A connection each: the computations below hold the event loop for seconds, past a kept-alive connection's idle time.
const post = (s: number, b: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = http.request(`${agent.url}/v0.1/pipeline_stats`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/msgpack', 'Content-Encoding': 'gzip' } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`intake answered ${res.statusCode}`))
      res.resume().on('end', resolve)
    })
    req.on('error', reject).end(services.payload(s, b))
  })
for (let b = last - 5; b <= last; b++) for (let s = 0; s < SERVICES; s++) await post(s, b)
console.log(`${agent.store.seriesCount} series, ${agent.store.cells} cells`)

// Computed every time: a context without the cache.
const bare = { store: agent.store, status: () => ({}) as never }
const computed: number[] = []
for (let i = 0; i < ROUNDS; i++) {
  const t = performance.now()
  summary(bare, 60)
  computed.push(performance.now() - t)
}
console.log(`computed: ${ms(computed)}`)

// What the agent does for a request (the summary's JSON), with the agent's cache.
const cached = { store: agent.store, status: () => ({}) as never, summaries: new ViewCache<SummaryBody>() }
const answer = (): number => {
  const t = performance.now()
  summaryJson(cached, 60)
  return performance.now() - t
}
answer()
const unchanged: number[] = []
for (let i = 0; i < ROUNDS; i++) unchanged.push(answer())
console.log(`answered, store unchanged (reused): ${ms(unchanged)}`)

// Payloads arriving between answers (a service's payload, then an answer, 200 times).
const busy: number[] = []
for (let s = 0; s < SERVICES; s++) {
  await post(s, last)
  busy.push(answer())
}
console.log(`answered, a payload between each two answers: ${ms(busy)}; ${busy.filter((x) => x > 20).length} of ${busy.length} over 20 ms`)
await agent.close()
