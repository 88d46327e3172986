/**
 * Case 7, pipeline overhead: kafkajs producing and consuming 100,000 messages of 100 bytes on
 * the librdkafka mock cluster, DSM off, on with the Wasm core, on with the TS core.
 *
 * Each configuration lives in its own process, joined to its own topic and group once, and the
 * rounds alternate between them (the order rotating). Separate processes because pathwise's
 * context store is an AsyncLocalStorage: once used, Node 20 runs its promise hooks on every
 * promise of the process, so a DSM-off client sharing a process with a DSM-on one would pay for
 * it too. A round: the producer sends 1,000 messages at a time, awaiting each send, while the
 * consumer (eachMessage) is paused; then it is resumed and reads them all.
 * Per round and configuration: messages per second (wall clock, 100,000 over the time of both
 * phases), and the client's CPU time per message (the broker is another process). The overhead
 * is taken within each round against DSM off; rounds go on until the 95% interval of the mean
 * throughput loss is narrower than the loss itself (for both cores), or the round or time limit
 * is reached.
 * BENCH_PIPELINE_NODE=/path/to/node runs the clients on another Node (the broker stays on this
 * one, whose native addon it needs): Node 24's AsyncLocalStorage has no promise hooks.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { startKafka } from '../../test/peers/kafka.js'
import { figure, meanInterval, type Figure, type Settings } from '../harness.js'
import type { Row } from '../results.js'
import type { FromChild, PipelineConfig, RoundFigures, ToChild } from './pipeline-child.js'

const CHILD = fileURLToPath(new URL('./pipeline-child.ts', import.meta.url))
const READY_TIMEOUT_MS = 60_000
const ROUND_TIMEOUT_MS = 120_000
const STOP_GRACE_MS = 10_000

interface Plan {
  messages: number
  configs: PipelineConfig[]
  minRounds: number
  maxRounds: number
  budgetMs: number
}

const FULL_PLAN: Plan = {
  messages: 100_000,
  configs: ['off', 'wasm', 'ts', 'header-only', 'wasm-no-header', 'context-only'],
  minRounds: 6,
  maxRounds: 12,
  budgetMs: 200_000,
}
const QUICK_PLAN: Plan = { messages: 5_000, configs: ['off', 'wasm', 'ts'], minRounds: 2, maxRounds: 2, budgetMs: 0 }

interface Child {
  config: PipelineConfig
  process: ChildProcess
  next(timeoutMs: number): Promise<FromChild>
}

function startChild(config: PipelineConfig, brokers: string[], suffix: string): Child {
  const child = fork(CHILD, [config, brokers.join(','), suffix], {
    execPath: process.env.BENCH_PIPELINE_NODE ?? process.execPath,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
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
  child.on('exit', (code) => deliver({ type: 'error', message: `the ${config} client exited (code ${code})` }))
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

const LABELS: Record<PipelineConfig, string> = {
  off: 'DSM off',
  wasm: 'Wasm',
  ts: 'TS',
  'header-only': 'the header alone (no DSM)',
  'wasm-no-header': 'Wasm without the header',
  'context-only': 'AsyncLocalStorage alone (no DSM)',
}

export async function pipeline(s: Settings): Promise<Row[]> {
  const plan = s.quick ? QUICK_PLAN : FULL_PLAN
  const peer = await startKafka()
  const suffix = randomUUID().slice(0, 8)
  const children = plan.configs.map((c) => startChild(c, peer.brokers, suffix))
  try {
    const [{ node }] = await Promise.all(children.map((c) => expect(c, 'ready', READY_TIMEOUT_MS)))
    const figures = new Map<PipelineConfig, RoundFigures[]>(plan.configs.map((c) => [c, []]))
    const started = Date.now()
    let rounds = 0
    const settled = () =>
      (['wasm', 'ts'] as const).every((c) => {
        const { mean, halfWidth } = meanInterval(losses(figures, c, pipelineRate))
        return halfWidth < Math.abs(mean)
      })
    while (rounds < plan.maxRounds && (rounds < plan.minRounds || (!settled() && Date.now() - started < plan.budgetMs))) {
      for (let k = 0; k < children.length; k++) {
        const child = children[(rounds + k) % children.length]
        child.process.send({ type: 'run', messages: plan.messages } satisfies ToChild)
        const { type: _, ...r } = await expect(child, 'round', ROUND_TIMEOUT_MS)
        figures.get(child.config)!.push(r)
      }
      rounds++
    }
    return rows(plan, rounds, node, figures)
  } finally {
    await Promise.all(children.map(stopChild))
    await peer.stop()
  }
}

const pipelineRate = (r: RoundFigures) => 1 / (r.produceSeconds + r.consumeSeconds)
const produceRate = (r: RoundFigures) => 1 / r.produceSeconds
const consumeRate = (r: RoundFigures) => 1 / r.consumeSeconds
const cpu = (r: RoundFigures) => r.produceCpuMicros + r.consumeCpuMicros

/** Per round, the throughput lost against DSM off, in percent. */
function losses(figures: Map<PipelineConfig, RoundFigures[]>, c: PipelineConfig, rate: (r: RoundFigures) => number): number[] {
  const off = figures.get('off')!
  return figures.get(c)!.map((r, i) => 100 * (1 - rate(r) / rate(off[i])))
}

function rows(plan: Plan, rounds: number, node: string, figures: Map<PipelineConfig, RoundFigures[]>): Row[] {
  const off = figures.get('off')!
  const others = plan.configs.filter((c) => c !== 'off')
  const cpuOverheads = (c: PipelineConfig) => figures.get(c)!.map((r, i) => 100 * (cpu(r) / cpu(off[i]) - 1))
  const interval = (name: string, values: number[]) => {
    const { mean, halfWidth } = meanInterval(values)
    const verdict = halfWidth < Math.abs(mean) ? 'spread smaller than the effect' : 'spread NOT smaller than the effect'
    return `${name}: mean ${mean.toFixed(1)}% ± ${halfWidth.toFixed(1)}% (95% interval, ${values.length} rounds; ${verdict})`
  }
  const columns = (f: (r: RoundFigures) => number): Partial<Record<'off' | 'wasm' | 'ts', Figure>> =>
    Object.fromEntries((['off', 'wasm', 'ts'] as const).map((c) => [c, figure(figures.get(c)!.map(f))]))
  const runtime = node === process.version ? '' : `, clients on Node ${node}`
  const name = `${plan.messages.toLocaleString('en-US')} messages of 100 B, ${rounds} rounds${runtime}`
  return [
    {
      case: 7,
      name: `Pipeline throughput (produce, then consume): ${name}`,
      unit: 'messages/s',
      figures: columns((r) => plan.messages * pipelineRate(r)),
      ratios: Object.fromEntries(others.map((c) => [`throughput loss, ${LABELS[c]} %`, figure(losses(figures, c, pipelineRate))])),
      notes: others.flatMap((c) => [
        interval(`throughput loss, ${LABELS[c]}`, losses(figures, c, pipelineRate)),
        interval(`  of which produce phase, ${LABELS[c]}`, losses(figures, c, produceRate)),
        interval(`  of which consume phase, ${LABELS[c]}`, losses(figures, c, consumeRate)),
      ]),
    },
    {
      case: 7,
      name: `Pipeline client CPU: ${name}`,
      unit: 'µs CPU/message',
      figures: columns((r) => cpu(r) / plan.messages),
      ratios: Object.fromEntries(others.map((c) => [`CPU overhead, ${LABELS[c]} %`, figure(cpuOverheads(c))])),
      notes: others.map((c) => interval(`CPU overhead, ${LABELS[c]}`, cpuOverheads(c))),
    },
  ]
}
