/**
 * What the synchronous send at exit costs (bindings/node/sync-post.ts), to choose when its worker
 * starts: at exit (nothing while the process runs) or with the process, kept idle and unref'd.
 * Each figure comes from fresh processes (a worker's start is a once-per-process cost), run in
 * turn, against a local Agent that answers at once:
 *
 * - the wait in an 'exit' listener for one POST, with the worker started there, or started a
 *   second earlier; and, for scale, a child process doing the POST (`spawnSync`), the other way to
 *   block until a request is done;
 * - what keeping a worker costs: the main thread's time to create it, the process's CPU (every
 *   thread) and resident memory one second later.
 *
 * `node --import tsx bench/exit-send.bench.ts [processes]`, under the bench lock.
 */
import { execFile, execFileSync } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const PROCESSES = Number(process.argv[2] ?? 15)
const SELF = fileURLToPath(import.meta.url)
const BODY_BYTES = 400 // about a gzipped payload of a few points

type Scenario = 'at-exit' | 'kept' | 'spawn' | 'idle-none' | 'idle-kept'

/** One scenario in this (fresh) process; prints its figures as JSON on stdout. */
async function child(scenario: Scenario, url: string): Promise<void> {
  const { startPoster } = await import('../bindings/node/sync-post.js')
  const request = () => ({ url, headers: { 'Content-Type': 'application/msgpack' }, body: new Uint8Array(BODY_BYTES), until: Date.now() + 2000 })
  const print = (figures: object): void => void process.stdout.write(`${JSON.stringify(figures)}\n`)
  if (scenario === 'idle-none' || scenario === 'idle-kept') {
    const cpu = process.cpuUsage()
    const rss = process.memoryUsage().rss
    const t0 = performance.now()
    if (scenario === 'idle-kept') startPoster()
    const createMs = performance.now() - t0
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const used = process.cpuUsage(cpu)
    return print({ createMs, cpuMs: (used.user + used.system) / 1000, rssMb: (process.memoryUsage().rss - rss) / 2 ** 20 })
  }
  const kept = scenario === 'kept' ? startPoster() : undefined
  if (kept !== undefined) await new Promise((resolve) => setTimeout(resolve, 1000))
  process.on('exit', () => {
    const t0 = performance.now()
    let status: number
    if (scenario === 'spawn') {
      const script = `const r = require('node:http').request(process.argv[1], { method: 'POST', agent: false }, (res) => { res.resume(); process.stdout.write(String(res.statusCode)) }); r.end(Buffer.alloc(${BODY_BYTES}))`
      status = Number(execFileSync(process.execPath, ['-e', script, url], { timeout: 2000, env: {} }))
    } else {
      ;[status] = (kept ?? startPoster()).post([request()])
    }
    print({ waitMs: performance.now() - t0, status })
  })
}

function quantiles(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return `${at(0.5).toFixed(1)} (${sorted[0].toFixed(1)}–${sorted[sorted.length - 1].toFixed(1)})`
}

async function main(): Promise<void> {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end('OK'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v0.1/pipeline_stats`
  // asynchronously: this process's event loop is the Agent
  const run = async (scenario: Scenario): Promise<Record<string, number>> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', SELF, '--child', scenario, url], { encoding: 'utf8' })
    return JSON.parse(stdout) as Record<string, number>
  }
  const scenarios: Scenario[] = ['at-exit', 'kept', 'spawn', 'idle-none', 'idle-kept']
  const figures = new Map<Scenario, Record<string, number>[]>(scenarios.map((s) => [s, []]))
  // interleaved, so that a noisy spell of the machine touches every scenario alike
  for (let i = 0; i < PROCESSES; i++) for (const s of scenarios) figures.get(s)!.push(await run(s))
  server.close()
  const column = (s: Scenario, key: string) => quantiles(figures.get(s)!.map((f) => f[key]))
  const failed = [...figures.values()].flat().filter((f) => 'status' in f && f.status !== 200).length
  process.stdout.write(`${PROCESSES} processes each, median (min–max), ms; ${failed} POSTs not answered 200\n\n`)
  process.stdout.write('| the wait in an \'exit\' listener for one POST | ms |\n| --- | ---: |\n')
  process.stdout.write(`| worker started at exit | ${column('at-exit', 'waitMs')} |\n`)
  process.stdout.write(`| worker started 1 s before, idle, unref'd | ${column('kept', 'waitMs')} |\n`)
  process.stdout.write(`| a child process (spawnSync) | ${column('spawn', 'waitMs')} |\n\n`)
  process.stdout.write('| keeping a worker, over the first second | without | with |\n| --- | ---: | ---: |\n')
  process.stdout.write(`| main thread, creating it (ms) | – | ${column('idle-kept', 'createMs')} |\n`)
  process.stdout.write(`| process CPU, every thread (ms) | ${column('idle-none', 'cpuMs')} | ${column('idle-kept', 'cpuMs')} |\n`)
  process.stdout.write(`| resident memory added (MB) | ${column('idle-none', 'rssMb')} | ${column('idle-kept', 'rssMb')} |\n`)
}

if (process.argv[2] === '--child') await child(process.argv[3] as Scenario, process.argv[4])
else await main()
