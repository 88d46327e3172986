/**
 * Case 7, what DSM costs a real pipeline: kafkajs 2.2.4 and the confluent client's KafkaJS API
 * producing and consuming messages of 100 B on the librdkafka mock cluster, with eachMessage and
 * with eachBatch, on Node 24 and on Node 20, in eight configurations: off; pathwise with the Wasm
 * core and with the TS core (the manual mode: createDataStreams({ core }) and instrumentKafkaJs /
 * instrumentConfluent); pathwise Wasm in the automatic mode (`-r pathwise/register`); dd-trace
 * tracing only (`-r dd-trace/init`); dd-trace tracing and DSM (DD_DATA_STREAMS_ENABLED=true); the
 * 28-character header alone (no DSM, the application adds it); pathwise Wasm without the header
 * (`injectHeaders: false`).
 *
 * A cell (a Node, a client, a mode) starts its own broker and one process per configuration
 * (pipeline-child.ts), each joined to its own topic and group once, then runs rounds in which
 * every configuration takes its turn, the order rotating; then the same again with fresh processes
 * (replicates: see Plan), the rounds of all of them pooled. Separate processes because each
 * configuration changes the whole process (an AsyncLocalStorage makes Node 20 pay promise hooks
 * on every promise; dd-trace patches the client). A round: the producer sends 500 messages at a
 * time, awaiting each send, while the consumer is paused; then it is resumed and reads them all.
 * Per round and configuration: the CPU time of the whole client process per message (connecting
 * and the group join left out; the broker is another process) and messages per second over both
 * phases. The derived figures (pathwise's DSM cost, dd-trace's, their ratio, the header's,
 * pathwise's own beyond the header) are taken within each round, then their median.
 *
 * Every process tells what its first message of each round carried (header names, and for
 * dd-trace whether a span was active in the handler): a configuration that did not do what it
 * claims (dd-trace inactive, pathwise sending no header) fails the case instead of giving a figure.
 *
 * dd-trace 6 turns itself off below Node 22; on Node 20 its processes get DD_INJECT_FORCE=true,
 * its own switch to run on an unsupported runtime, so that the Node 20 figures compare the same
 * work. Both tracers send to an Agent stand-in of this process (every request answered 200 `{}`).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { FAST_CONSUMER, startKafka } from '../../test/peers/kafka.js'
import { figure, type Figure, type Settings } from '../harness.js'
import { node24 } from '../node24.js'
import type { FromChild, PipelineClient, PipelineConfig, PipelineMode, RoundFigures, ToChild } from './pipeline-child.js'

const CHILD_SOURCE = fileURLToPath(new URL('./pipeline-child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// inside node_modules: packages resolve from there as from the project
const CHILD = join(ROOT, 'node_modules', '.cache', 'pathwise-bench', 'pipeline-child.mjs')
const READY_TIMEOUT_MS = 120_000
const ROUND_TIMEOUT_MS = 180_000
const STOP_GRACE_MS = 10_000

export const CONFIGS: PipelineConfig[] = ['off', 'wasm', 'ts', 'wasm-auto', 'dd-trace', 'dd-trace-dsm', 'header', 'wasm-no-header']
export const CLIENTS: PipelineClient[] = ['kafkajs', 'confluent']
export const MODES: PipelineMode[] = ['eachMessage', 'eachBatch']

/** The figures derived within each round, in µs per message (the ratio has no unit). */
export const DERIVED = {
  'pathwise DSM': 'Wasm − off',
  'pathwise TS DSM': 'TS − off',
  'automatic mode': 'automatic − Wasm',
  'dd-trace tracing': 'tracing − off',
  'dd-trace DSM': 'tracing + DSM − tracing',
  ratio: 'pathwise DSM ÷ dd-trace DSM',
  header: 'header − off',
  'beyond header': '(Wasm − off) − (header − off)',
  'without header': 'no header − off',
} as const
export type Derived = keyof typeof DERIVED

interface Plan {
  /** Which cells run: every one, or (the quick suite) a Latin square: each Node, client and mode twice, every configuration in each. */
  cells: 'all' | 'square'
  messages: number
  warmUp: number
  /**
   * Fresh processes per cell, one after the other: what V8 makes of the client's hot code differs
   * from process to process (kafkajs's crc32C deoptimizing again and again in one, not in another),
   * by more than rounds within one process differ. Rounds are pooled over the replicates.
   */
  replicates: number
  /** Rounds per replicate, every configuration taking its turn in each. */
  rounds: number
}

const FULL_PLAN: Plan = { cells: 'all', messages: 20_000, warmUp: 2_000, replicates: 3, rounds: 5 }
const QUICK_PLAN: Plan = { cells: 'square', messages: 1_000, warmUp: 500, replicates: 1, rounds: 1 }

export interface PipelineCell {
  node: string
  client: PipelineClient
  mode: PipelineMode
  messages: number
  rounds: number
  /** Sets of fresh processes the rounds were spread over. */
  replicates: number
  /** CPU µs per message of the client process, per configuration. */
  cpu: Record<PipelineConfig, Figure>
  /** Messages per second over both phases, per configuration. */
  throughput: Record<PipelineConfig, Figure>
  derived: Record<Derived, Figure>
  /** Whether, for pathwise's and dd-trace's DSM costs, the interquartile range over rounds is narrower than the median. */
  settled: boolean
  /** What each configuration's messages carried (header names of the rounds' first messages; `span` when dd-trace had one active). */
  seen: Record<PipelineConfig, string[]>
}

export interface PipelineResults {
  plan: Plan
  cells: PipelineCell[]
}

const LABELS: Record<PipelineConfig, string> = {
  off: 'off',
  wasm: 'pathwise Wasm',
  'wasm-auto': 'pathwise Wasm, automatic mode',
  ts: 'pathwise TS',
  'dd-trace': 'dd-trace tracing',
  'dd-trace-dsm': 'dd-trace tracing + DSM',
  header: 'header alone',
  'wasm-no-header': 'pathwise without the header',
}
export const configLabel = (c: PipelineConfig) => LABELS[c]

const PATHWAY = 'dd-pathway-ctx-base64'
const TRACE = 'x-datadog-trace-id'

/** What a configuration's first message of a round must show, else its figures measure something else. */
function expectation(config: PipelineConfig, r: RoundFigures): string | undefined {
  const has = (h: string) => r.headers.includes(h)
  switch (config) {
    case 'off':
    case 'wasm-no-header':
      return r.headers.length === 0 ? undefined : `expected no header, got ${r.headers.join(', ')}`
    case 'header':
    case 'wasm':
    case 'ts':
    case 'wasm-auto':
      return has(PATHWAY) && !has(TRACE) ? undefined : `expected ${PATHWAY} (and no tracing header), got [${r.headers.join(', ')}]`
    case 'dd-trace':
      return has(TRACE) && !has(PATHWAY) && r.span === true ? undefined : `expected dd-trace's ${TRACE}, no ${PATHWAY}, a span; got [${r.headers.join(', ')}], span ${r.span}`
    case 'dd-trace-dsm':
      return has(TRACE) && has(PATHWAY) && r.span === true ? undefined : `expected ${TRACE}, ${PATHWAY} and a span; got [${r.headers.join(', ')}], span ${r.span}`
  }
}

/** pipeline-child.ts as JavaScript (see there why), written where the children run it from. */
function writeChild(): void {
  const { outputText } = ts.transpileModule(readFileSync(CHILD_SOURCE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  })
  mkdirSync(dirname(CHILD), { recursive: true })
  writeFileSync(CHILD, outputText)
}

/** The Agent stand-in both tracers send to: every request read and answered 200 `{}`. */
async function startAgentSink(): Promise<{ url: string; requests: Map<string, number>; server: Server }> {
  const requests = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    requests.set(path, (requests.get(path) ?? 0) + 1)
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server }
}

interface Runtime {
  name: string
  execPath: string
  /** The folder whose node_modules holds the confluent package built for this runtime (absent: the project's own). */
  confluent?: string
  /** dd-trace runs here only when forced. */
  forceDdTrace: boolean
}

/** The child's environment: the machine's without any Datadog or pathwise setting, then the configuration's. */
function environment(config: PipelineConfig, runtime: Runtime, agentUrl: string, warmUp: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DD_') && !k.startsWith('PATHWISE_')))
  Object.assign(env, { DD_TRACE_AGENT_URL: agentUrl, DD_SERVICE: 'bench-pipeline', DD_ENV: 'bench', BENCH_PIPELINE_WARM_UP: String(warmUp) })
  if (runtime.confluent !== undefined) env.BENCH_CONFLUENT = runtime.confluent
  if (config !== 'off' && config !== 'header' && config !== 'dd-trace') env.DD_DATA_STREAMS_ENABLED = 'true'
  if (config.startsWith('dd-trace') && runtime.forceDdTrace) env.DD_INJECT_FORCE = 'true'
  return env
}

function preload(config: PipelineConfig): string[] {
  if (config === 'wasm-auto') return ['-r', 'pathwise/register']
  if (config === 'dd-trace' || config === 'dd-trace-dsm') return ['-r', 'dd-trace/init']
  return []
}

/** BENCH_PIPELINE_CPU_PROF=DIR: the pathwise Wasm and header-alone processes write their CPU profiles there (see pipeline-child.ts, and bench/profile.ts to compare them). */
function profiled(cell: { node: string; client: PipelineClient; mode: PipelineMode }, config: PipelineConfig): NodeJS.ProcessEnv {
  const dir = process.env.BENCH_PIPELINE_CPU_PROF
  if (dir === undefined || (config !== 'wasm' && config !== 'header')) return {}
  return { BENCH_PIPELINE_PROFILE: join(dir, `${cell.node}-${cell.client}-${cell.mode}-${config}.cpuprofile`) }
}

interface Child {
  config: PipelineConfig
  process: ChildProcess
  next(timeoutMs: number): Promise<FromChild>
}

function startChild(cell: { node: string; client: PipelineClient; mode: PipelineMode }, config: PipelineConfig, runtime: Runtime, brokers: string[], agentUrl: string, plan: Plan): Child {
  const suffix = randomUUID().slice(0, 8)
  const child = fork(CHILD, [cell.client, cell.mode, config, brokers.join(','), suffix, JSON.stringify(FAST_CONSUMER)], {
    cwd: ROOT,
    execPath: runtime.execPath,
    execArgv: preload(config),
    env: { ...environment(config, runtime, agentUrl, plan.warmUp), ...profiled(cell, config) },
    // dd-trace's start-up lines and kafkajs's warnings on Node 24 (TimeoutNegativeWarning): kept, told only when the process fails
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const inbox: FromChild[] = []
  let waiting: ((m: FromChild) => void) | undefined
  const deliver = (m: FromChild) => {
    if (waiting !== undefined) {
      const w = waiting
      waiting = undefined
      w(m)
    } else inbox.push(m)
  }
  child.on('message', (m: FromChild) => deliver(m))
  child.on('exit', (code) => deliver({ type: 'error', message: `the ${config} client exited (code ${code}):\n${output}` }))
  return {
    config,
    process: child,
    next(timeoutMs) {
      const queued = inbox.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      return new Promise<FromChild>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the ${config} client did not answer within ${timeoutMs} ms`)), timeoutMs)
        waiting = (m) => {
          clearTimeout(timer)
          resolve(m)
        }
      })
    },
  }
}

/** Asks the client to leave its group and exit; kills it if it has not within STOP_GRACE_MS. */
async function stopChild(child: Child): Promise<void> {
  const p = child.process
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = new Promise((resolve) => p.once('exit', resolve))
  if (p.connected) p.send({ type: 'stop' } satisfies ToChild)
  const timer = setTimeout(() => p.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

async function expect<T extends FromChild['type']>(child: Child, type: T, timeoutMs: number): Promise<Extract<FromChild, { type: T }>> {
  const m = await child.next(timeoutMs)
  if (m.type === 'error') throw new Error(`pipeline client ${child.config}: ${m.message}`)
  if (m.type !== type) throw new Error(`pipeline client ${child.config}: expected ${type}, got ${m.type}`)
  return m as Extract<FromChild, { type: T }>
}

/** The first and third quartiles (linear interpolation). */
export function quartiles(f: Figure): [number, number] {
  const s = [...f.rounds].sort((a, b) => a - b)
  const at = (q: number) => {
    const i = q * (s.length - 1)
    const lo = Math.floor(i)
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo)
  }
  return [at(0.25), at(0.75)]
}

/** Spread smaller than the effect: the interquartile range narrower than the median's distance from 0. */
export function settled(f: Figure): boolean {
  const [q1, q3] = quartiles(f)
  return q3 - q1 < Math.abs(f.median)
}

function derive(perRound: Map<PipelineConfig, RoundFigures[]>, messages: number): Record<Derived, Figure> {
  const cpu = (c: PipelineConfig) => perRound.get(c)!.map((r) => r.cpuMicros / messages)
  const [off, wasm, ts, auto, dd, ddDsm, header, noHeader] = CONFIGS.map(cpu)
  const each = (f: (i: number) => number) => figure(off.map((_, i) => f(i)))
  return {
    'pathwise DSM': each((i) => wasm[i] - off[i]),
    'pathwise TS DSM': each((i) => ts[i] - off[i]),
    'automatic mode': each((i) => auto[i] - wasm[i]),
    'dd-trace tracing': each((i) => dd[i] - off[i]),
    'dd-trace DSM': each((i) => ddDsm[i] - dd[i]),
    ratio: each((i) => (wasm[i] - off[i]) / (ddDsm[i] - dd[i])),
    header: each((i) => header[i] - off[i]),
    'beyond header': each((i) => wasm[i] - off[i] - (header[i] - off[i])),
    'without header': each((i) => noHeader[i] - off[i]),
  }
}

async function runCell(client: PipelineClient, mode: PipelineMode, runtime: Runtime, plan: Plan, agentUrl: string, log: (line: string) => void): Promise<PipelineCell> {
  const peer = await startKafka()
  try {
    const perRound = new Map<PipelineConfig, RoundFigures[]>(CONFIGS.map((c) => [c, []]))
    const seen = new Map<PipelineConfig, Set<string>>(CONFIGS.map((c) => [c, new Set()]))
    let node = ''
    let rounds = 0
    for (let replicate = 0; replicate < plan.replicates; replicate++) {
      const children = CONFIGS.map((c) => startChild({ node: runtime.name, client, mode }, c, runtime, peer.brokers, agentUrl, plan))
      try {
        ;[{ node }] = await Promise.all(children.map((c) => expect(c, 'ready', READY_TIMEOUT_MS)))
        for (let round = 0; round < plan.rounds; round++, rounds++) {
          for (let k = 0; k < children.length; k++) {
            const child = children[(rounds + k) % children.length]
            child.process.send({ type: 'run', messages: plan.messages } satisfies ToChild)
            const { type: _, ...r } = await expect(child, 'round', ROUND_TIMEOUT_MS)
            const wrong = expectation(child.config, r)
            if (wrong !== undefined) throw new Error(`case 7, ${node} ${client} ${mode}, ${LABELS[child.config]}: ${wrong}`)
            for (const h of r.headers) seen.get(child.config)!.add(h)
            if (r.span === true) seen.get(child.config)!.add('span')
            perRound.get(child.config)!.push(r)
          }
        }
      } finally {
        await Promise.all(children.map(stopChild))
      }
    }
    const perConfig = (f: (r: RoundFigures) => number) =>
      Object.fromEntries(CONFIGS.map((c) => [c, figure(perRound.get(c)!.map(f))])) as Record<PipelineConfig, Figure>
    const derived = derive(perRound, plan.messages)
    const cell: PipelineCell = {
      node,
      client,
      mode,
      messages: plan.messages,
      rounds,
      replicates: plan.replicates,
      cpu: perConfig((r) => r.cpuMicros / plan.messages),
      throughput: perConfig((r) => plan.messages / r.seconds),
      derived,
      settled: settled(derived['pathwise DSM']) && settled(derived['dd-trace DSM']),
      seen: Object.fromEntries(CONFIGS.map((c) => [c, [...seen.get(c)!].sort()])) as Record<PipelineConfig, string[]>,
    }
    log(
      `case 7: ${node} ${client} ${mode}, ${rounds} rounds: ` +
        CONFIGS.map((c) => `${c} ${cell.cpu[c].median.toFixed(1)}`).join(', ') +
        ` µs/message; ratio ${derived.ratio.median.toFixed(2)}, beyond the header ${derived['beyond header'].median.toFixed(1)} µs`,
    )
    return cell
  } finally {
    await peer.stop()
  }
}

/**
 * Runs every cell, Node 24 first (dd-trace's own platform: the targets are read there).
 * For profiling and building: BENCH_PIPELINE_CELLS=24,20 / kafkajs / eachMessage (comma-separated,
 * from any of the three lists) narrows the cells; BENCH_PIPELINE_MESSAGES, BENCH_PIPELINE_ROUNDS
 * (per replicate) and BENCH_PIPELINE_REPLICATES change the plan.
 */
export async function runPipeline(s: Settings, log: (line: string) => void = () => {}): Promise<PipelineResults> {
  const plan = { ...(s.quick ? QUICK_PLAN : FULL_PLAN) }
  const messages = Number(process.env.BENCH_PIPELINE_MESSAGES)
  const rounds = Number(process.env.BENCH_PIPELINE_ROUNDS)
  if (Number.isInteger(messages) && messages > 0) plan.messages = messages
  const replicates = Number(process.env.BENCH_PIPELINE_REPLICATES)
  if (Number.isInteger(rounds) && rounds > 0) plan.rounds = rounds
  if (Number.isInteger(replicates) && replicates > 0) plan.replicates = replicates
  const pick = process.env.BENCH_PIPELINE_CELLS?.split(',')
  const wanted = <T extends string>(all: T[]) => (pick === undefined || !all.some((v) => pick.includes(v)) ? all : all.filter((v) => pick.includes(v)))
  const runtimes: Runtime[] = []
  for (const major of wanted(['24', '20'])) {
    if (major === '24') {
      const n = await node24(log)
      runtimes.push({ name: 'node24', execPath: n.execPath, confluent: n.confluent, forceDdTrace: false })
    } else runtimes.push({ name: `node${major}`, execPath: process.execPath, forceDdTrace: true })
  }
  writeChild()
  const sink = await startAgentSink()
  try {
    const cells: PipelineCell[] = []
    for (const [r, runtime] of runtimes.entries()) {
      for (const [c, client] of wanted(CLIENTS).entries()) {
        for (const [m, mode] of wanted(MODES).entries()) {
          if (plan.cells === 'square' && pick === undefined && (r + c + m) % 2 === 1) continue
          cells.push(await runCell(client, mode, runtime, plan, sink.url, log))
        }
      }
    }
    return { plan, cells }
  } finally {
    sink.server.close()
  }
}
