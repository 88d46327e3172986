/**
 * Case 12, what DSM costs a BullMQ job: the whole process's CPU per job (bullmq-child.mjs does the
 * work: Queue.add of a ~100-byte job, awaited, and a Worker of the same process processing it,
 * so each job costs pathwise a produce and a consume checkpoint) on a real Redis (Debian's
 * redis-server, one per cell). On Node 24 in six configurations, one process each: off; the
 * context alone (the application puts pathwise's 72 bytes of telemetry metadata in each job: what
 * carrying a context costs BullMQ, no DSM); pathwise's explicit API (instrumentBullmq); pathwise's
 * automatic mode (`-r pathwise/register`); dd-trace tracing (`-r dd-trace/init`); dd-trace tracing
 * and DSM (DD_DATA_STREAMS_ENABLED=true). On Node 20 the first four (dd-trace 6 is off below Node 22). Rounds rotate the configurations;
 * the derived figures are taken within each round, then their median. Each process tells what
 * the first job of its rounds carried in Redis (its telemetry metadata's `_datadog` keys), and for
 * dd-trace whether a span was active in the processor: a configuration that did not do what it
 * claims fails the case. Both tracers send to an Agent stand-in of this process.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { startRedis } from '../../test/peers/redis.js'
import { figure, type Figure, type Settings } from '../harness.js'
import { node24Binary } from '../node24.js'
import { number } from '../table.js'

const CHILD = fileURLToPath(new URL('./bullmq-child.mjs', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TIMEOUT_MS = 120_000

export type BullmqConfig = 'off' | 'carrier' | 'pathwise' | 'pathwise-auto' | 'dd-trace' | 'dd-trace-dsm'
export const ON_NODE_24: BullmqConfig[] = ['off', 'carrier', 'pathwise', 'pathwise-auto', 'dd-trace', 'dd-trace-dsm']
export const ON_NODE_20: BullmqConfig[] = ['off', 'carrier', 'pathwise', 'pathwise-auto']
const LABELS: Record<BullmqConfig, string> = {
  off: 'off',
  carrier: 'context alone',
  pathwise: 'pathwise',
  'pathwise-auto': 'pathwise, automatic mode',
  'dd-trace': 'dd-trace tracing',
  'dd-trace-dsm': 'dd-trace tracing + DSM',
}
/** Derived within each round: a − b. */
const DERIVED: Record<string, [BullmqConfig, BullmqConfig]> = {
  'pathwise DSM': ['pathwise', 'off'],
  'context alone': ['carrier', 'off'],
  'pathwise beyond the context': ['pathwise', 'carrier'],
  'automatic mode': ['pathwise-auto', 'off'],
  'dd-trace tracing': ['dd-trace', 'off'],
  'dd-trace DSM': ['dd-trace-dsm', 'dd-trace'],
}

interface Plan {
  jobs: number
  warmUp: number
  rounds: number
}
const FULL_PLAN: Plan = { jobs: 2_000, warmUp: 300, rounds: 5 }
const QUICK_PLAN: Plan = { jobs: 100, warmUp: 20, rounds: 1 }

export interface BullmqCell {
  node: string
  jobs: number
  rounds: number
  /** CPU µs per job of the process, per configuration. */
  cpu: Partial<Record<BullmqConfig, Figure>>
  /** Jobs per second, per configuration. */
  throughput: Partial<Record<BullmqConfig, Figure>>
  derived: Record<string, Figure>
  /** The `_datadog` keys of the metadata each configuration's jobs carried. */
  seen: Partial<Record<BullmqConfig, string[]>>
}

export interface BullmqResults {
  plan: Plan
  cells: BullmqCell[]
}

interface Round {
  seconds: number
  cpuMicros: number
  carried: string[]
  span?: boolean
}

const PATHWAY = 'dd-pathway-ctx-base64'
const TRACE = 'x-datadog-trace-id'

/** Why a configuration's round does not show what it claims; undefined when it does. */
function mismatch(config: BullmqConfig, r: Round): string | undefined {
  const has = (key: string) => r.carried.includes(key)
  const pathwise = config === 'pathwise' || config === 'pathwise-auto'
  if (config === 'off') return r.carried.length === 0 ? undefined : `carried [${r.carried}]`
  if (pathwise || config === 'carrier') return has(PATHWAY) && !has(TRACE) ? undefined : `expected ${PATHWAY} alone, carried [${r.carried}]`
  if (r.span !== true) return 'no dd-trace span in the processor'
  const dsm = config === 'dd-trace-dsm'
  return has(TRACE) && has(PATHWAY) === dsm ? undefined : `expected ${TRACE}${dsm ? ` and ${PATHWAY}` : ` without ${PATHWAY}`}, carried [${r.carried}]`
}

/** A configuration's process: forked with its Node and flags, ready once its Queue and Worker are. */
class Service {
  private readonly child: ChildProcess
  private readonly replies: ((m: { type: string } & Partial<Round> & { message?: string; node?: string }) => void)[] = []
  node = ''

  constructor(
    readonly config: BullmqConfig,
    execPath: string,
    redisPort: number,
    agentUrl: string,
  ) {
    const dd = config.startsWith('dd-trace')
    const execArgv = config === 'pathwise-auto' ? ['-r', 'pathwise/register'] : dd ? ['-r', 'dd-trace/init'] : []
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DD_TRACE_AGENT_URL: agentUrl,
      DD_SERVICE: `bench-${config}`,
      DD_DATA_STREAMS_ENABLED: config === 'pathwise-auto' || config === 'dd-trace-dsm' ? 'true' : 'false',
      DD_TRACE_STATS_COMPUTATION_ENABLED: 'false',
      DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
      DD_REMOTE_CONFIGURATION_ENABLED: 'false',
      DD_RUNTIME_METRICS_ENABLED: 'false',
    }
    this.child = fork(CHILD, [config, String(redisPort), `bench-${config}`, agentUrl], { cwd: ROOT, execPath, execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: { type: string }) => this.replies.shift()?.(m as never))
  }

  private next(what: string): Promise<{ type: string } & Partial<Round> & { message?: string; node?: string }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`case 12, ${this.config}: no answer to ${what} in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS)
      this.replies.push((m) => {
        clearTimeout(timer)
        if (m.type === 'error') reject(new Error(`case 12, ${this.config}: ${m.message}`))
        else resolve(m)
      })
    })
  }

  async ready(): Promise<void> {
    this.node = (await this.next('start')).node ?? ''
  }

  async round(jobs: number): Promise<Round> {
    const answer = this.next('a round')
    this.child.send({ type: 'run', jobs })
    const m = await answer
    return { seconds: m.seconds!, cpuMicros: m.cpuMicros!, carried: m.carried ?? [], ...(m.span !== undefined && { span: m.span }) }
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.send({ type: 'stop' })
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

async function runCell(execPath: string, configs: BullmqConfig[], plan: Plan, agentUrl: string, log: (line: string) => void): Promise<BullmqCell> {
  const redis = await startRedis()
  const services = configs.map((c) => new Service(c, execPath, redis.port, agentUrl))
  try {
    await Promise.all(services.map((s) => s.ready()))
    const node = services[0].node
    log(`case 12: ${node}, ${configs.length} configurations, ${plan.rounds} rounds of ${plan.jobs} jobs`)
    for (const s of services) await s.round(plan.warmUp)
    const rounds = new Map<BullmqConfig, Round[]>(configs.map((c) => [c, []]))
    for (let r = 0; r < plan.rounds; r++) {
      // Each round in another order, so that no configuration always follows the same one.
      for (let i = 0; i < services.length; i++) {
        const s = services[(i + r) % services.length]
        const got = await s.round(plan.jobs)
        const wrong = mismatch(s.config, got)
        if (wrong !== undefined) throw new Error(`case 12, ${node}, ${s.config}: ${wrong}`)
        rounds.get(s.config)!.push(got)
      }
    }
    const perJob = (c: BullmqConfig) => rounds.get(c)!.map((r) => r.cpuMicros / plan.jobs)
    const cpu: BullmqCell['cpu'] = {}
    const throughput: BullmqCell['throughput'] = {}
    const seen: BullmqCell['seen'] = {}
    for (const c of configs) {
      cpu[c] = figure(perJob(c))
      throughput[c] = figure(rounds.get(c)!.map((r) => plan.jobs / r.seconds))
      seen[c] = rounds.get(c)![0].carried
    }
    const derived: Record<string, Figure> = {}
    for (const [name, [a, b]] of Object.entries(DERIVED)) {
      if (!configs.includes(a) || !configs.includes(b)) continue
      const [as, bs] = [perJob(a), perJob(b)]
      derived[name] = figure(as.map((v, r) => v - bs[r]))
    }
    return { node, jobs: plan.jobs, rounds: plan.rounds, cpu, throughput, derived, seen }
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()))
    await redis.stop()
  }
}

export async function runBullmq(settings: Settings, log: (line: string) => void): Promise<BullmqResults> {
  const plan = settings.quick ? QUICK_PLAN : FULL_PLAN
  const agent = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve))
  const agentUrl = `http://127.0.0.1:${(agent.address() as AddressInfo).port}`
  try {
    const node24 = await node24Binary(log)
    return { plan, cells: [await runCell(node24, ON_NODE_24, plan, agentUrl, log), await runCell(process.execPath, ON_NODE_20, plan, agentUrl, log)] }
  } finally {
    agent.close()
  }
}

const cell = (f: Figure | undefined): string => (f === undefined ? '—' : `${number(f.median)} (${number(f.min)}–${number(f.max)})`)

/** The CPU per job of each configuration, and the derived figures, one row per Node. */
export function bullmqTable(results: BullmqResults): string {
  const configs = ON_NODE_24
  const head = `| Node | ${configs.map((c) => LABELS[c]).join(' | ')} | ${Object.keys(DERIVED).join(' | ')} |`
  const rule = `| --- | ${[...configs, ...Object.keys(DERIVED)].map(() => '---:').join(' | ')} |`
  const rows = results.cells.map((c) => `| ${c.node} | ${configs.map((k) => cell(c.cpu[k])).join(' | ')} | ${Object.keys(DERIVED).map((k) => cell(c.derived[k])).join(' | ')} |`)
  return [head, rule, ...rows].join('\n')
}
