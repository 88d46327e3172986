/**
 * /metrics at 10,000 label sets: what a scrape costs the agent and what Prometheus takes in. The
 * agent (from source, in this process) takes 200 services' payloads of 50 points
 * (bench/agent-load/services.ts: latencies log-normal around 5 ms and 55 ms, sizes around 600 B)
 * for six buckets; then /metrics is read, plain and gzipped: its size, the Prometheus series it
 * holds, the lines a label set writes, and how long the agent takes to write it.
 *   flock /tmp/pathwise-bench.lock node --import tsx bench/agent-metrics.ts
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { gunzipSync } from 'node:zlib'
import { startAgent } from '../agent/src/server.js'
import { fleet, finishedBucket } from './agent-load/services.js'

const SERVICES = 200
const POINTS = 50

const agent = await startAgent({ port: 0, log: () => {} })
const services = fleet({ services: SERVICES, points: POINTS })
const last = finishedBucket(Date.now())
const get = (path: string, headers: Record<string, string> = {}): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    http.get(`${agent.url}${path}`, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks)))
    }).on('error', reject)
  })
const post = (s: number, b: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = http.request(`${agent.url}/v0.1/pipeline_stats`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/msgpack', 'Content-Encoding': 'gzip' } }, (res) => res.resume().on('end', resolve))
    req.on('error', reject).end(services.payload(s, b))
  })
for (let b = last - 5; b <= last; b++) for (let s = 0; s < SERVICES; s++) await post(s, b)

const timed = async (headers: Record<string, string>): Promise<[Buffer, number]> => {
  const t = performance.now()
  const body = await get('/metrics', headers)
  return [body, performance.now() - t]
}
await timed({})
const [plain, plainMs] = await timed({})
const [gzipped, gzipMs] = await timed({ 'Accept-Encoding': 'gzip' })
const text = plain.toString()
const lines = text.split('\n').filter((l) => l && !l.startsWith('#'))
const labelSets = lines.filter((l) => l.startsWith('pathwise_edge_latency_seconds_count{')).length
const histogramLines = lines.filter((l) => /^pathwise_(edge_latency_seconds|pathway_latency_seconds|payload_size_bytes)_/.test(l)).length
console.log(`${agent.store.seriesCount} series; /metrics: ${labelSets} label sets, ${lines.length} Prometheus series (${(histogramLines / labelSets).toFixed(1)} a label set)`)
console.log(`plain ${(plain.length / 1048576).toFixed(1)} MiB in ${plainMs.toFixed(0)} ms; gzipped ${(gzipped.length / 1048576).toFixed(2)} MiB in ${gzipMs.toFixed(0)} ms (${gunzipSync(gzipped).length === plain.length ? 'the same text' : 'another text'})`)
await agent.close()
