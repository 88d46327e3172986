/**
 * The agent under load: how many payloads and points per second the built agent takes from many
 * simulated services, with its intake latency, CPU and memory, and what happens past its caps.
 *
 *   node --import tsx bench/agent-load.ts                 the full plan (about 3 minutes)
 *   node --import tsx bench/agent-load.ts --quick         small sizes, a few seconds
 *   node --import tsx bench/agent-load.ts [--services N] [--points N] [--speed X] [--seconds S] [--stamps real|compressed] [--no-summary] [--db]
 *                                                         one run (defaults 200, 50, 10, 30, real, /api/summary polled, no database)
 *   --baseline=PATH also runs another checkout's built agent (its agent/dist/bin.js) first, the same way
 *   (BENCH_AGENT_BASELINE for `npm run bench`); --out=FILE writes the results as JSON.
 * `npm run bench` runs the full plan after the suite's cases (`--only=9` alone), `bench:quick` the quick one.
 *
 * A run starts a fresh agent process (`node agent/dist/bin.js agent --port 0`) and N services,
 * each sending one gzipped StatsPayload of P points every 10 s / speed over its own keep-alive
 * connection, the services' sends spread evenly over the period (open loop: a service sends on
 * time whether or not its previous payload was answered, as a tracer's flush timer does, up to
 * MAX_IN_FLIGHT_PER_SERVICE). Payloads carry the bucket that has just ended by the clock
 * (`--stamps real`, so series grow a cell per 10 s of real time however fast the payloads come) or
 * one bucket more per round, ending now (`--stamps compressed`: 10 s of history per round, which is
 * what fills the cell cap). The first seconds (warm-up) are sent but not counted. /api/summary is
 * polled once a second meanwhile, one request at a time (as `pathwise top` does), unless told not to.
 *
 * The full plan: the issue's example (200 services × 50 points at 10×, 30 s); a ladder of 15 s runs,
 * halving or doubling the speed until one holds (no error, no skipped send, p99 under 1 s) and
 * another does not, then one step between; the lowest speed that broke again without summary
 * polling; then the series cap (250 × 50 = 12,500 series) and the cell cap (10,000 series over
 * 12 buckets) at rates below saturation.
 */
import http from 'node:http'
import os from 'node:os'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { BUCKET_MS } from 'pathwise/core'
import { machineBusySeconds, startAgentProcess, type AgentProcess } from './agent-load/agent-process.js'
import { fleet, finishedBucket } from './agent-load/services.js'

/** Which agent a run loads: this checkout's, or another's built agent (`--baseline`), to compare with in the same run. */
export interface AgentUnderTest {
  /** As the table names it: 'this build', or 'baseline'. */
  name: string
  /** The agent's bin.js; this checkout's when undefined. */
  bin?: string
}

export interface LoadRunSpec {
  name: string
  agent: AgentUnderTest
  services: number
  points: number
  speed: number
  /** Measured seconds, after the warm-up. */
  seconds: number
  warmupSeconds: number
  stamps: 'real' | 'compressed'
  /** Whether /api/summary is polled meanwhile: every second, as `pathwise top` does, or as `summaryEveryMs` says. */
  summary: boolean
  /** 2,000 for the page's interval; default 1,000. */
  summaryEveryMs?: number
  /** With `--db` (a fresh file): what the writes do under the load, then a restart on the same file. */
  db: boolean
}

export interface Quantiles {
  p50: number
  p99: number
  max: number
  n: number
}

export interface LoadRunResult {
  spec: LoadRunSpec
  loadAverage: number[]
  /** Payloads the schedule asked for per second (services × speed / 10 s). */
  offeredPayloadsPerSecond: number
  /** Counted requests (sent after the warm-up) and what became of them. */
  sent: number
  accepted: number
  /** Non-2xx statuses and connection errors, by status or error code. */
  errors: Record<string, number>
  /** Sends skipped because the service already had MAX_IN_FLIGHT_PER_SERVICE payloads unanswered. */
  skipped: number
  acceptedPayloadsPerSecond: number
  acceptedPointsPerSecond: number
  /** Request start to the end of the response, ms. */
  intakeMs: Quantiles
  /** GET /api/summary, one at a time, once a second, while loaded. */
  summaryMs: Quantiles
  /** How late the generator sent, ms: large values mean the machine, not the agent, held the load back. */
  sendLagMs: Quantiles
  agentCpuPercent: number
  generatorCpuPercent: number
  /** What the rest of the machine used meanwhile (other engineers' tests: the machine is shared), % of one core. */
  otherCpuPercent: number
  rssMiB: { idle: number; peak: number; end: number }
  payloadBytes: { gzipped: number; msgpack: number }
  /** The agent's /api/status at the end. */
  status: { series: number; cells: number; pointsReceived: number; pointsDropped: number; outOfWindow: number; accepted: number; rejected: number }
  /** Services with a node in /api/summary at the end. */
  servicesShown: number
  /** Lines the agent logged during the run. */
  agentLog: string[]
  saturated: string | null
  /** With `db`: the database writes at the end of the load, and a restart's numbers against those before it. */
  db?: DbFigures
}

export interface DbFigures {
  /** /api/status's dbWrites at the end (before stopping): unwritten changes, the last write's rows and time. */
  writes: { unwritten: number; dropped: number; failing: unknown; lastWriteAgoMs: number | null; lastWrite: { rows: number; ms: number } | null }
  /** Messages per edge over the last hour, before the stop (SIGTERM) and after the restart on the same file. */
  countsBefore: Record<string, number>
  countsAfter: Record<string, number>
  /** How long the restarted agent took to listen (reading the file back included). */
  restartSeconds: number
  fileMiB: number
}

export interface AgentLoadResults {
  plan: 'full' | 'quick' | 'single'
  date: string
  node: string
  machine: { cpuModel: string; cpus: number; memoryGiB: number; os: string }
  seconds: number
  runs: LoadRunResult[]
  /** From the speed ladder: the highest speed that held, and the first that did not. */
  saturation: { held: LoadRunResult | null; broke: LoadRunResult | null } | null
}

/** Payloads a run builds before it starts; a run that sends more builds each as it sends it. */
const MAX_PREPARED = 20_000
/** A tracer has rarely more than one payload unanswered; past a few, the agent is not keeping up. */
const MAX_IN_FLIGHT_PER_SERVICE = 8
/** Once the last payload is sent, answers have this long to arrive; later ones count as 'unanswered'. */
const DRAIN_MS = 30_000
const REQUEST_TIMEOUT_MS = 30_000
const SUMMARY_EVERY_MS = 1000
/** How often the page polls /api/summary (agent/src/ui/app.js). */
const PAGE_POLL_MS = 2000
const RSS_EVERY_MS = 200
/** A run is saturated past this p99 intake latency (or with any error or skipped send). */
const SATURATION_P99_MS = 1000
const HEADERS = {
  'Content-Type': 'application/msgpack',
  'Content-Encoding': 'gzip',
  'Datadog-Meta-Lang': 'javascript',
  'Datadog-Meta-Tracer-Version': '0.1.0',
}

function quantiles(values: number[]): Quantiles {
  if (values.length === 0) return { p50: NaN, p99: NaN, max: NaN, n: 0 }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], n: sorted.length }
}

function get(agent: http.Agent, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

/** One POST; resolves with the status, or the error's code, never rejects. */
function post(agent: http.Agent, url: URL, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const headers = { ...HEADERS, 'Content-Length': body.length }
    const options = { host: url.hostname, port: url.port, path: '/v0.1/pipeline_stats', method: 'POST', agent, timeout: REQUEST_TIMEOUT_MS, headers }
    const req = http.request(options, (res) => {
      res.resume()
      res.on('end', () => resolve(String(res.statusCode)))
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    req.end(body)
  })
}

export async function loadRun(spec: LoadRunSpec, log: (line: string) => void = () => {}): Promise<LoadRunResult> {
  const periodMs = BUCKET_MS / spec.speed
  const intervalMs = periodMs / spec.services
  const totalMs = (spec.warmupSeconds + spec.seconds) * 1000
  const events = Math.ceil(totalMs / intervalMs)
  const rounds = Math.ceil(events / spec.services)

  // Payloads are built before the clock starts: the generator's own work would otherwise land in the figures.
  const services = fleet(spec)
  const nowBucket = finishedBucket(Date.now())
  let bucketOf: (round: number) => number
  if (spec.stamps === 'compressed') {
    const first = nowBucket - rounds + 1
    bucketOf = (round) => first + round
    // An hour of buckets would not fit in memory built: those runs build each payload as they send it.
    if (rounds * spec.services <= MAX_PREPARED) services.prepare(Array.from({ length: rounds }, (_, r) => first + r))
  } else {
    bucketOf = () => finishedBucket(Date.now())
    // The buckets the run will cross, and one more for a start that slips past a boundary.
    services.prepare(Array.from({ length: Math.ceil((totalMs + 30_000) / BUCKET_MS) + 1 }, (_, i) => nowBucket + i))
  }
  const dir = spec.db ? mkdtempSync(join(os.tmpdir(), 'pathwise-agent-load-')) : null
  const dbArgs = dir ? ['--db', join(dir, 'history.sqlite')] : []
  let agent = await startAgentProcess(dbArgs, spec.agent.bin)
  const base = new URL(agent.url)
  const clients = Array.from({ length: spec.services }, () => new http.Agent({ keepAlive: true }))
  const apiClient = new http.Agent({ keepAlive: true })
  const loadAverage = os.loadavg()
  let rssTimer: NodeJS.Timeout | undefined
  try {
    await sleep(500)
    const idleRss = agent.rssMiB()
    const inFlight = new Uint16Array(spec.services)
    const pending = new Set<Promise<void>>()
    const intake: number[] = []
    const lags: number[] = []
    const errors: Record<string, number> = {}
    let sent = 0
    let accepted = 0
    let skipped = 0

    const start = performance.now()
    const measureFrom = start + spec.warmupSeconds * 1000
    const end = start + totalMs
    let cpu0 = { agent: 0, generator: process.cpuUsage(), machine: 0 }
    let measuring = false
    let peakRss = idleRss
    rssTimer = setInterval(() => (peakRss = Math.max(peakRss, agent.rssMiB())), RSS_EVERY_MS)

    const summaries: number[] = []
    let servicesShown = 0
    const summaryLoop = (async () => {
      // Bounded by the run's end: one request at a time, once a second.
      while (spec.summary && performance.now() < end) {
        const t = performance.now()
        if (t >= measureFrom) {
          // A failed poll is counted with the intake's errors, not thrown: the run goes on to its end.
          const status = await get(apiClient, `${agent.url}/api/summary`).then(
            (res) => String(res.status),
            (err: NodeJS.ErrnoException) => err.code ?? 'error',
          )
          if (status === '200') summaries.push(performance.now() - t)
          else errors[`/api/summary ${status}`] = (errors[`/api/summary ${status}`] ?? 0) + 1
        }
        await sleep(Math.max(0, t + (spec.summaryEveryMs ?? SUMMARY_EVERY_MS) - performance.now()))
      }
    })()

    log(`  ${spec.name}: ${spec.services} services × ${spec.points} points at ${spec.speed}× (${n((spec.services * spec.speed) / 10)} payloads/s offered) for ${spec.warmupSeconds} + ${n(spec.seconds)} s${spec.summary ? ', /api/summary polled' : ''}…`)
    for (let k = 0; k < events; ) {
      const now = performance.now()
      if (!measuring && now >= measureFrom) {
        measuring = true
        cpu0 = { agent: agent.cpuSeconds(), generator: process.cpuUsage(), machine: machineBusySeconds() }
      }
      // Everything due by now, then a sleep until the next one (timers are ms-grained: at high rates a tick sends several).
      for (; k < events && start + k * intervalMs <= now; k++) {
        const due = start + k * intervalMs
        const service = k % spec.services
        const counted = due >= measureFrom
        if (inFlight[service] >= MAX_IN_FLIGHT_PER_SERVICE) {
          if (counted) skipped++
          continue
        }
        const body = services.payload(service, bucketOf(Math.floor(k / spec.services)))
        inFlight[service]++
        const t = performance.now()
        if (counted) {
          sent++
          lags.push(t - due)
        }
        const p = post(clients[service], base, body).then((outcome) => {
          inFlight[service]--
          pending.delete(p)
          if (!counted) return
          intake.push(performance.now() - t)
          if (outcome === '200') accepted++
          else errors[outcome] = (errors[outcome] ?? 0) + 1
        })
        pending.add(p)
      }
      if (k < events) await sleep(Math.max(0, start + k * intervalMs - performance.now()))
    }
    const sendEnd = performance.now()
    const cpu1 = { agent: agent.cpuSeconds(), generator: process.cpuUsage(cpu0.generator), machine: machineBusySeconds() }
    const measuredS = (sendEnd - measureFrom) / 1000
    const generatorS = (cpu1.generator.user + cpu1.generator.system) / 1e6
    const drained = new AbortController()
    await Promise.race([Promise.all(pending), sleep(DRAIN_MS, undefined, { signal: drained.signal }).catch(() => {})])
    drained.abort()
    if (pending.size > 0) errors.unanswered = (errors.unanswered ?? 0) + pending.size
    await summaryLoop
    clearInterval(rssTimer)
    const endRss = agent.rssMiB()
    peakRss = Math.max(peakRss, endRss)

    const status = JSON.parse((await get(apiClient, `${agent.url}/api/status`)).body)
    const summary = JSON.parse((await get(apiClient, `${agent.url}/api/summary`)).body) as { nodes: Array<{ kind: string; name: string }> }
    servicesShown = summary.nodes.filter((n) => n.kind === 'service' && n.name.startsWith('load-svc-')).length

    const intakeMs = quantiles(intake)
    const errorCount = Object.values(errors).reduce((a, b) => a + b, 0)
    const offered = (spec.services * spec.speed) / 10
    const acceptedPerS = accepted / measuredS
    const saturated =
      errorCount > 0
        ? `errors: ${JSON.stringify(errors)}`
        : skipped > 0
          ? `${skipped} sends skipped (services with ${MAX_IN_FLIGHT_PER_SERVICE} payloads unanswered)`
          : intakeMs.p99 > SATURATION_P99_MS
            ? `p99 ${intakeMs.p99.toFixed(0)} ms > ${SATURATION_P99_MS} ms`
            : acceptedPerS < 0.95 * offered
              ? `accepted ${acceptedPerS.toFixed(0)}/s < 95% of the ${offered}/s offered`
              : null
    const result: LoadRunResult = {
      spec,
      loadAverage,
      offeredPayloadsPerSecond: offered,
      sent,
      accepted,
      errors,
      skipped,
      acceptedPayloadsPerSecond: acceptedPerS,
      acceptedPointsPerSecond: acceptedPerS * spec.points,
      intakeMs,
      summaryMs: quantiles(summaries),
      sendLagMs: quantiles(lags),
      agentCpuPercent: ((cpu1.agent - cpu0.agent) / measuredS) * 100,
      generatorCpuPercent: (generatorS / measuredS) * 100,
      otherCpuPercent: (Math.max(0, cpu1.machine - cpu0.machine - (cpu1.agent - cpu0.agent) - generatorS) / measuredS) * 100,
      rssMiB: { idle: idleRss, peak: peakRss, end: endRss },
      payloadBytes: { gzipped: services.sizes().gzipped / services.sizes().payloads, msgpack: services.sizes().msgpack / services.sizes().payloads },
      status: {
        series: status.series,
        cells: status.cells,
        pointsReceived: status.points.received,
        pointsDropped: status.points.dropped,
        outOfWindow: status.points.outOfWindow,
        accepted: status.payloads.accepted,
        rejected: status.payloads.rejected,
      },
      servicesShown,
      agentLog: agent.stderr().split('\n').filter((l) => l.length > 0),
      saturated,
    }
    if (dir) {
      const { restarted, ...figures } = await restartOnDb(agent, apiClient, status.dbWrites, dbArgs, spec.agent, join(dir, 'history.sqlite'))
      result.db = figures
      agent = restarted
    }
    log(`  ${describe(result)}`)
    return result
  } finally {
    clearInterval(rssTimer)
    for (const c of [...clients, apiClient]) c.destroy()
    await agent.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}

/** Messages per edge over the last hour, as the agent shows them. */
async function edgeCounts(client: http.Agent, url: string): Promise<Record<string, number>> {
  const { edges } = JSON.parse((await get(client, `${url}/api/topology?range=3600`)).body) as { edges: Array<{ id: string; count: number }> }
  return Object.fromEntries(edges.map((e) => [e.id, e.count]))
}

/** The writes at the end of the load, then a stop (SIGTERM: the last write) and a restart on the same file; the restarted agent is returned to be stopped. */
async function restartOnDb(
  agent: AgentProcess,
  client: http.Agent,
  writes: { unwritten: number; dropped: number; failing: unknown; lastWriteAt: number | null; lastWrite?: { rows: number; ms: number } | null },
  dbArgs: string[],
  under: AgentUnderTest,
  file: string,
): Promise<DbFigures & { restarted: AgentProcess }> {
  const countsBefore = await edgeCounts(client, agent.url)
  await agent.stop()
  const t = performance.now()
  const restarted = await startAgentProcess(dbArgs, under.bin)
  const restartSeconds = (performance.now() - t) / 1000
  const countsAfter = await edgeCounts(client, restarted.url)
  return {
    writes: {
      unwritten: writes.unwritten,
      dropped: writes.dropped,
      failing: writes.failing,
      lastWriteAgoMs: writes.lastWriteAt === null ? null : Date.now() - writes.lastWriteAt,
      lastWrite: writes.lastWrite ?? null,
    },
    countsBefore,
    countsAfter,
    restartSeconds,
    fileMiB: statSync(file).size / 2 ** 20,
    restarted,
  }
}

function describe(r: LoadRunResult): string {
  return (
    `${r.acceptedPayloadsPerSecond.toFixed(0)} payloads/s, ${Math.round(r.acceptedPointsPerSecond)} points/s, ` +
    `intake p50 ${r.intakeMs.p50.toFixed(1)} p99 ${r.intakeMs.p99.toFixed(1)} ms, summary p99 ${r.summaryMs.p99.toFixed(0)} ms, ` +
    `agent CPU ${r.agentCpuPercent.toFixed(0)}%, RSS peak ${r.rssMiB.peak.toFixed(0)} MiB, series ${r.status.series}, cells ${r.status.cells}, ` +
    `dropped ${r.status.pointsDropped}${r.saturated ? `; saturated: ${r.saturated}` : ''}`
  )
}

const EXAMPLE = { services: 200, points: 50 }
/** Issue 28's target: 50,000 points/s (1,000 payloads of 50 points a second) with /api/summary polled, and no 503. */
const TARGET_SPEED = 50
/** An hour and a bit of 10 s buckets, for the hour of 10,000 series. */
const HOUR_ROUNDS = 370
const THIS_BUILD: AgentUnderTest = { name: 'this build' }

/**
 * The full plan, for this build's agent and, with `baseline` (another checkout's built
 * agent/dist/bin.js, or BENCH_AGENT_BASELINE), for that one first, in the same run: the issue's
 * example and a speed ladder up to saturation for both; then, for this build, the target rate
 * polled, the same with --db (and a restart on the file), the series cap, an hour of 10,000
 * series; and the cell cap run for both.
 */
export async function runAgentLoad(options: { quick: boolean; log?: (line: string) => void; baseline?: string }): Promise<AgentLoadResults> {
  const log = options.log ?? (() => {})
  const started = Date.now()
  const runs: LoadRunResult[] = []
  let saturation: AgentLoadResults['saturation'] = null
  const run = async (spec: Omit<LoadRunSpec, 'db' | 'agent'> & Partial<Pick<LoadRunSpec, 'db' | 'agent'>>) => {
    const r = await loadRun({ db: false, agent: THIS_BUILD, ...spec }, log)
    runs.push(r)
    return r
  }
  const baselineBin = options.baseline ?? process.env.BENCH_AGENT_BASELINE
  const agents: AgentUnderTest[] = baselineBin ? [{ name: 'baseline', bin: baselineBin }, THIS_BUILD] : [THIS_BUILD]
  if (options.quick) {
    for (const agent of agents) {
      await run({ name: 'load', agent, services: 20, points: 10, speed: 10, seconds: 3, warmupSeconds: 1, stamps: 'real', summary: true })
      await run({ name: 'history', agent, services: 20, points: 10, speed: 10, seconds: 3, warmupSeconds: 0, stamps: 'compressed', summary: true })
    }
    await run({ name: 'with --db', services: 20, points: 10, speed: 10, seconds: 3, warmupSeconds: 1, stamps: 'real', summary: true, db: true })
  } else {
    for (const agent of agents) {
      const s = await saturate(agent, run, started)
      if (agent === THIS_BUILD) saturation = s
    }
    // The target: 50,000 points/s, /api/summary polled as the page does (every 2 s), as long as the example; then with --db, and a restart on its file.
    const target = { ...EXAMPLE, speed: TARGET_SPEED, seconds: 30, warmupSeconds: 3, stamps: 'real', summary: true, summaryEveryMs: PAGE_POLL_MS } as const
    await run({ name: 'target, polled as the page does', ...target })
    await run({ name: 'target, polled as the page does, with --db', ...target, db: true })
    // The caps, without summary polling and below the rates above, so that what is dropped is the caps' doing.
    // 12,500 series against the cap of 10,000, four rounds.
    await run({ name: 'series cap', services: 250, points: 50, speed: 2, seconds: 20, warmupSeconds: 0, stamps: 'real', summary: false })
    // 10,000 series, a new bucket each round: 12 rounds are 120 s of history (the cell cap of the baseline's 100,000).
    for (const agent of agents) await run({ name: 'cell cap', agent, ...EXAMPLE, speed: 4, seconds: 30, warmupSeconds: 0, stamps: 'compressed', summary: false })
    // An hour of 10,000 series: 370 buckets of each, as fast as they go in, the page polled.
    await run({ name: 'an hour of 10,000 series', ...EXAMPLE, speed: TARGET_SPEED, seconds: (HOUR_ROUNDS * 10) / TARGET_SPEED, warmupSeconds: 0, stamps: 'compressed', summary: true })
  }
  return {
    plan: options.quick ? 'quick' : 'full',
    date: new Date(started).toISOString(),
    node: process.version,
    machine: machine(),
    seconds: (Date.now() - started) / 1000,
    runs,
    saturation,
  }
}

/** The issue's example, then doubling or halving the speed until one run holds and another does not, one step between them, and the lowest that broke without polling. */
async function saturate(
  agent: AgentUnderTest,
  run: (spec: Omit<LoadRunSpec, 'db'>) => Promise<LoadRunResult>,
  started: number,
): Promise<AgentLoadResults['saturation']> {
  const ladder = (speed: number, summary = true) =>
    run({ name: summary ? 'ladder' : 'ladder, no /api/summary polling', agent, ...EXAMPLE, speed, seconds: 15, warmupSeconds: 2, stamps: 'real', summary })
  const example = await run({ name: 'example', agent, ...EXAMPLE, speed: 10, seconds: 30, warmupSeconds: 3, stamps: 'real', summary: true })
  let held: LoadRunResult | null = example.saturated === null ? example : null
  let broke: LoadRunResult | null = example.saturated === null ? null : example
  let speed = held ? 20 : 5
  for (let step = 0; step < 5 && (held === null || broke === null) && Date.now() - started < 600_000; step++) {
    const r = await ladder(speed)
    if (r.saturated === null) held = held === null || r.spec.speed > held.spec.speed ? r : held
    else broke = broke === null || r.spec.speed < broke.spec.speed ? r : broke
    speed = r.saturated === null ? speed * 2 : speed / 2
  }
  if (held !== null && broke !== null && broke.spec.speed === held.spec.speed * 2) {
    const r = await ladder(held.spec.speed * 1.5)
    if (r.saturated === null) held = r
    else broke = r
  }
  // The lowest rate that broke, without /api/summary: what the summary's time on the main thread costs the intake.
  if (broke !== null) await ladder(broke.spec.speed, false)
  return { held, broke }
}

function machine(): AgentLoadResults['machine'] {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  }
}

function n(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–'
}

/** The runs as one Markdown table. */
export function agentLoadTable(results: AgentLoadResults): string {
  const head =
    '| agent | run | services × points | speed | offered payloads/s | accepted payloads/s | points/s | intake p50 / p99 / max (ms) | errors | /api/summary p50 / p99 (ms) | agent CPU | other processes, CPU | agent RSS idle → peak (MiB) | series | cells | points dropped |'
  const rule = '|---|---|---|---:|---:|---:|---:|---|---|---|---:|---:|---|---:|---:|---:|'
  const rows = results.runs.map((r) => {
    const errors = Object.entries(r.errors).map(([k, v]) => `${v} × ${k}`)
    if (r.skipped > 0) errors.push(`${r.skipped} skipped`)
    return (
      `| ${r.spec.agent.name} | ${r.spec.name}${r.saturated ? ' (saturated)' : ''} | ${r.spec.services} × ${r.spec.points} | ${r.spec.speed}× | ${n(r.offeredPayloadsPerSecond)} | ${n(r.acceptedPayloadsPerSecond)} | ` +
      `${n(r.acceptedPointsPerSecond)} | ${n(r.intakeMs.p50, 1)} / ${n(r.intakeMs.p99, 1)} / ${n(r.intakeMs.max, 1)} | ${errors.length > 0 ? errors.join(', ') : '0'} | ` +
      `${n(r.summaryMs.p50)} / ${n(r.summaryMs.p99)} | ${n(r.agentCpuPercent)}% | ${n(r.otherCpuPercent)}% | ${n(r.rssMiB.idle)} → ${n(r.rssMiB.peak)} | ${n(r.status.series)} | ${n(r.status.cells)} | ${n(r.status.pointsDropped)} |`
    )
  })
  return [head, rule, ...rows].join('\n')
}

export function agentLoadNotes(results: AgentLoadResults): string[] {
  const m = results.machine
  const notes = [
    `${results.plan} plan, ${results.date}, Node ${results.node}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, ${results.seconds.toFixed(0)} s`,
  ]
  for (const r of results.runs) {
    notes.push(
      `${r.spec.agent.name}, ${r.spec.name}: load average at start ${r.loadAverage.map((l) => l.toFixed(2)).join(' ')}; payloads ${n(r.payloadBytes.gzipped / 1024, 1)} KiB gzipped ` +
        `(${n(r.payloadBytes.msgpack / 1024, 1)} KiB msgpack); ${r.sent} sent after warm-up; generator CPU ${n(r.generatorCpuPercent)}%, other processes ${n(r.otherCpuPercent)}% of a core, send lag p99 ${n(r.sendLagMs.p99, 1)} ms; ` +
        `RSS at the end ${n(r.rssMiB.end)} MiB; agent status: ${r.status.accepted} accepted, ${r.status.rejected} rejected, ${r.status.pointsReceived} points received, ` +
        `${r.status.pointsDropped} dropped, ${r.status.outOfWindow} out of window; ${r.servicesShown} of ${r.spec.services} services on the map` +
        (r.agentLog.length > 0 ? `; agent log: ${r.agentLog.slice(0, 3).join(' | ')}` : '; nothing in the agent log'),
    )
    if (r.db) notes.push(`${r.spec.agent.name}, ${r.spec.name}: ${dbNote(r.db)}`)
  }
  if (results.saturation !== null) {
    const { held, broke } = results.saturation
    const at = (r: LoadRunResult | null) => (r === null ? 'none' : `${r.spec.speed}× (${n(r.offeredPayloadsPerSecond)} payloads/s offered, ${n(r.acceptedPayloadsPerSecond)} accepted)`)
    notes.push(`saturation: held at ${at(held)}; broke at ${at(broke)}${broke?.saturated ? `: ${broke.saturated}` : ''}`)
  }
  return notes
}

function dbNote(db: DbFigures): string {
  const edges = Object.keys(db.countsBefore)
  const same = edges.filter((e) => db.countsAfter[e] === db.countsBefore[e]).length
  const last = db.writes.lastWrite ? `${n(db.writes.lastWrite.rows)} rows in ${n(db.writes.lastWrite.ms)} ms` : 'none'
  return (
    `database at the end of the load: ${db.writes.unwritten} changes unwritten, ${db.writes.dropped} dropped, failing ${JSON.stringify(db.writes.failing)}, ` +
    `last write ${db.writes.lastWriteAgoMs === null ? 'never' : `${n(db.writes.lastWriteAgoMs)} ms before the stop`} (${last}); file ${n(db.fileMiB, 1)} MiB; ` +
    `restarted on it in ${n(db.restartSeconds, 1)} s: ${same} of ${edges.length} edges with the same message counts over the hour as before the stop`
  )
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string' },
      points: { type: 'string' },
      speed: { type: 'string' },
      seconds: { type: 'string' },
      stamps: { type: 'string' },
      'no-summary': { type: 'boolean' },
      db: { type: 'boolean' },
      baseline: { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
    },
  })
  const num = (v: string | undefined, fallback: number, name: string): number => {
    if (v === undefined) return fallback
    const x = Number(v)
    if (!(x > 0 && Number.isFinite(x))) throw new Error(`--${name}: not a positive number: ${v}`)
    return x
  }
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const single = [values.services, values.points, values.speed, values.seconds, values.stamps, values['no-summary'], values.db].some((v) => v !== undefined)
  let results: AgentLoadResults
  if (single) {
    const started = Date.now()
    const stamps = values.stamps ?? 'real'
    if (stamps !== 'real' && stamps !== 'compressed') throw new Error(`--stamps: real or compressed, not ${stamps}`)
    const spec: Omit<LoadRunSpec, 'agent'> = {
      name: 'run',
      services: Math.round(num(values.services, EXAMPLE.services, 'services')),
      points: Math.round(num(values.points, EXAMPLE.points, 'points')),
      speed: num(values.speed, 10, 'speed'),
      seconds: num(values.seconds, 30, 'seconds'),
      warmupSeconds: stamps === 'real' ? 3 : 0,
      stamps,
      summary: !(values['no-summary'] ?? false),
      db: values.db ?? false,
    }
    const runs: LoadRunResult[] = []
    if (values.baseline !== undefined) runs.push(await loadRun({ ...spec, agent: { name: 'baseline', bin: values.baseline } }, log))
    runs.push(await loadRun({ ...spec, agent: THIS_BUILD }, log))
    results = { plan: 'single', date: new Date(started).toISOString(), node: process.version, machine: machine(), seconds: (Date.now() - started) / 1000, runs, saturation: null }
  } else {
    results = await runAgentLoad({ quick: values.quick ?? false, log, baseline: values.baseline })
  }
  if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(results, null, 2) + '\n')
  process.stdout.write(`${agentLoadTable(results)}\n\n${agentLoadNotes(results).map((l) => `- ${l}`).join('\n')}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
