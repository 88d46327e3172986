/**
 * The fleet view's resident memory (issue 26, finding 5), the view in a child process as
 * `pathwise agent --prometheus URL` runs it, against a Prometheus stand-in
 * (agent/test/helpers/fake-prometheus.ts), RSS read from /proc every 20 ms:
 *   1. 4 views at once (the page's ranges), every query answered 30 MiB: the peak;
 *   2. one view whose stats answers are valid and hold 150,000 series each (35.7 MiB, read in shards):
 *      how long it took (the stand-in, in this process, builds each answer), the peak, then RSS up to two
 *      minutes later (the view is reused for as long as it took to build, then dropped).
 *   flock /tmp/pathwise-bench.lock node --import tsx bench/agent-fleet-memory.ts
 */
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { killAgentProcesses, startAgentProcess } from '../agent/test/helpers/agent-process.js'
import { seriesAnswer, startFakePrometheus } from '../agent/test/helpers/fake-prometheus.js'

const VIEWS = ['/api/summary?range=60', '/api/summary?range=300', '/api/summary?range=900', '/api/summary?range=3600']
const SERIES = 150_000

const rssMiB = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024

/** Runs `read` while sampling the child's RSS; its peak. */
async function peakWhile(pid: number, read: () => Promise<unknown>): Promise<number> {
  let peak = rssMiB(pid)
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20)
  try {
    await read()
  } finally {
    clearInterval(sampler)
  }
  return peak
}

const fake = await startFakePrometheus((path, form) => seriesAnswer(path, 10, form.get('query') ?? ''))
const view = await startAgentProcess('--prometheus', fake.url)
const pid = view.child.pid!
try {
  await (await fetch(`${view.url}/api/summary`)).text()
  await sleep(2000)
  const start = rssMiB(pid)

  const huge = seriesAnswer('/api/v1/query', 130_000)
  const hugeMatrix = seriesAnswer('/api/v1/query_range', 130_000)
  fake.answer = (path) => (path.startsWith('/api/v1/query_range') ? hugeMatrix : huge)
  const statuses: number[] = []
  const concurrent = await peakWhile(pid, () => Promise.all(VIEWS.map(async (p) => {
    const res = await fetch(`${view.url}${p}`)
    statuses.push(res.status)
    await res.text()
  })))
  fake.answer = () => '{}'
  await sleep(5000)
  const before = rssMiB(pid)
  console.log(`4 views at once, every answer ${(huge.length / 1048576).toFixed(1)} MiB: RSS ${start.toFixed(0)} MiB at the start, ${concurrent.toFixed(0)} MiB at the peak (answers ${statuses.sort().join(', ')}), ${before.toFixed(0)} MiB 5 s later`)

  // The stats families' queries answered with every series (a shard with its own), the others (offsets, failed sends, payloads) with none.
  const stats = /pathwise_(edge_latency|pathway_latency|payload_size)/
  fake.answer = (path, form) => {
    const query = form.get('query') ?? ''
    return seriesAnswer(path, stats.test(query) ? SERIES : 0, query)
  }
  const began = Date.now()
  let answer = ''
  const peak = await peakWhile(pid, async () => {
    const res = await fetch(`${view.url}/api/status?range=1800`)
    const body = (await res.json()) as { series?: number; error?: string }
    answer = res.status === 200 ? `holding ${body.series} series` : `answered ${res.status} (${body.error})`
  })
  const took = Date.now() - began
  fake.answer = () => '{}'
  const built = Date.now()
  const after: string[] = []
  for (const s of [10, 30, 60, 90, 120]) {
    await sleep(built + s * 1000 - Date.now())
    after.push(`${rssMiB(pid).toFixed(0)} MiB after ${s} s`)
  }
  console.log(
    `one view of ${SERIES.toLocaleString('en')}-series answers (${(seriesAnswer('/api/v1/query', SERIES).length / 1048576).toFixed(1)} MiB each unsharded), built in ${(took / 1000).toFixed(1)} s, ${answer}: RSS ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at the peak, ${after.join(', ')}`,
  )
} finally {
  killAgentProcesses()
  await fake.close()
}
