/**
 * Case 11, what DSM costs a RabbitMQ message, the whole process's CPU per message
 * (rabbitmq-child.mjs does the work): amqplib publishing 100-byte messages to a queue and
 * consuming them on the same connection, and rhea sending and receiving them over AMQP 1.0, through
 * a real RabbitMQ 3.10 (both ends of the hop in one process: a message costs pathwise a produce and a
 * consume checkpoint). On Node 24, and Node 20 in the full run, in these configurations, one
 * process each: off; pathwise's explicit API; pathwise's automatic mode (`-r pathwise/register`);
 * the 28-character header alone, added by the application (what carrying it costs the client); for
 * amqplib, dd-trace's tracing (`-r dd-trace/init`) and tracing with DSM (DD_DATA_STREAMS_ENABLED=true).
 * Not for rhea: dd-trace's rhea sender adds delivery annotations to every message (its trace
 * context, and with DSM the pathway's), and RabbitMQ 3.10 then resets the connection and drops
 * the messages: nothing arrives to measure. Rounds rotate the configurations; the derived
 * figures are taken within each round. Each process tells what its first message carried: a
 * configuration that did not do what it claims fails the case.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { startRabbitMq } from '../../test/peers/rabbitmq.js'
import type { Figure, Settings } from '../harness.js'
import { node24Binary } from '../node24.js'
import { number } from '../table.js'
import { childEnv, forkChild, perMessage, runRounds, type Child } from './round-children.js'

const CHILD = fileURLToPath(new URL('./rabbitmq-child.mjs', import.meta.url))

export type RabbitMqClient = 'amqplib' | 'rhea'
export type RabbitMqConfig = 'off' | 'pathwise' | 'pathwise-auto' | 'header' | 'dd-trace' | 'dd-trace-dsm'
export const RABBITMQ_CONFIGS: Record<RabbitMqClient, RabbitMqConfig[]> = {
  amqplib: ['off', 'pathwise', 'pathwise-auto', 'header', 'dd-trace', 'dd-trace-dsm'],
  rhea: ['off', 'pathwise', 'pathwise-auto', 'header'],
}
const LABELS: Record<RabbitMqConfig, string> = {
  off: 'off',
  pathwise: 'pathwise',
  'pathwise-auto': 'pathwise, automatic mode',
  header: 'header alone',
  'dd-trace': 'dd-trace tracing',
  'dd-trace-dsm': 'dd-trace tracing + DSM',
}
const DERIVED = ['pathwise − off', 'automatic − off', 'header − off', 'pathwise − header', 'dd-trace − off', 'dd-trace DSM: tracing + DSM − tracing'] as const

interface Plan {
  messages: Record<RabbitMqClient, number>
  warmUp: number
  rounds: number
  /** Node 20 as well (the full run). */
  node20: boolean
}
const FULL_PLAN: Plan = { messages: { amqplib: 20_000, rhea: 10_000 }, warmUp: 2_000, rounds: 7, node20: true }
const QUICK_PLAN: Plan = { messages: { amqplib: 1_000, rhea: 500 }, warmUp: 200, rounds: 1, node20: false }

export interface RabbitMqCell {
  node: string
  client: RabbitMqClient
  messages: number
  rounds: number
  /** CPU µs per message of the process, per configuration. */
  cpu: Partial<Record<RabbitMqConfig, Figure>>
  /** Within each round (DERIVED). */
  derived: Record<string, Figure>
  /** The header (amqplib) or application property and delivery annotation (rhea) names each configuration's first message carried. */
  seen: Partial<Record<RabbitMqConfig, string[]>>
}

export interface RabbitMqResults {
  plan: Plan
  cells: RabbitMqCell[]
}

const PATHWAY = 'dd-pathway-ctx-base64'
const TRACE = 'x-datadog-trace-id'

function expectation(config: RabbitMqConfig, names: string[]): string | undefined {
  const has = (h: string) => names.includes(h)
  const got = `got [${names.join(', ')}]`
  if (config === 'off') return names.length === 0 ? undefined : `expected nothing, ${got}`
  if (config === 'dd-trace') return has(TRACE) && !has(PATHWAY) ? undefined : `expected ${TRACE} and no ${PATHWAY}, ${got}`
  if (config === 'dd-trace-dsm') return has(TRACE) && has(PATHWAY) ? undefined : `expected ${TRACE} and ${PATHWAY}, ${got}`
  return has(PATHWAY) && !has(TRACE) ? undefined : `expected ${PATHWAY} alone, ${got}`
}

function startChild(client: RabbitMqClient, config: RabbitMqConfig, execPath: string, port: number, agentUrl: string, warmUp: number, forceDdTrace: boolean): Child<RabbitMqConfig> {
  const env = childEnv({ DD_TRACE_AGENT_URL: agentUrl, DD_SERVICE: `bench-${client}`, DD_ENV: 'bench', BENCH_WARM_UP: String(warmUp) })
  if (config === 'pathwise' || config === 'pathwise-auto' || config === 'dd-trace-dsm') env.DD_DATA_STREAMS_ENABLED = 'true'
  if (config.startsWith('dd-trace') && forceDdTrace) env.DD_INJECT_FORCE = 'true'
  const execArgv = config === 'pathwise-auto' ? ['-r', 'pathwise/register'] : config.startsWith('dd-trace') ? ['-r', 'dd-trace/init'] : []
  return forkChild(CHILD, [client, config, String(port)], config, { execPath, execArgv, env, what: `${client} ${config}` })
}

async function runCell(client: RabbitMqClient, execPath: string, forceDdTrace: boolean, plan: Plan, port: number, agentUrl: string): Promise<RabbitMqCell> {
  const configs = RABBITMQ_CONFIGS[client]
  const messages = plan.messages[client]
  const children = configs.map((c) => startChild(client, c, execPath, port, agentUrl, plan.warmUp, forceDdTrace))
  const { node, perRound } = await runRounds(children, plan.rounds, messages, (config, names) => {
    const wrong = expectation(config, names)
    return wrong === undefined ? undefined : `case 11, ${client}, ${LABELS[config]}: ${wrong}`
  })
  const m = perMessage(perRound, messages)
  const derived: Record<string, Figure> = m.pathwise()
  if (configs.includes('dd-trace')) {
    derived['dd-trace − off'] = m.minus('dd-trace', 'off')
    derived['dd-trace DSM: tracing + DSM − tracing'] = m.minus('dd-trace-dsm', 'dd-trace')
  }
  return {
    node,
    client,
    messages,
    rounds: plan.rounds,
    cpu: m.cpu(configs),
    derived,
    seen: m.seen(configs),
  }
}

/** Every cell, Node 24 first (dd-trace's own platform; on Node 20 its processes get DD_INJECT_FORCE=true). */
export async function runRabbitMq(s: Settings, log: (line: string) => void = () => {}): Promise<RabbitMqResults> {
  const plan = s.quick ? QUICK_PLAN : FULL_PLAN
  const runtimes = [{ execPath: await node24Binary(log), forceDdTrace: false }, ...(plan.node20 ? [{ execPath: process.execPath, forceDdTrace: true }] : [])]
  const rabbit = await startRabbitMq()
  const sink = createServer((req, res) => (req.resume(), req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))))
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  try {
    const cells: RabbitMqCell[] = []
    for (const runtime of runtimes) {
      for (const client of ['amqplib', 'rhea'] as const) {
        const cell = await runCell(client, runtime.execPath, runtime.forceDdTrace, plan, rabbit.port, `http://127.0.0.1:${(sink.address() as AddressInfo).port}`)
        log(`case 11: ${cell.node} ${client}: ${Object.entries(cell.cpu).map(([c, f]) => `${c} ${number(f.median)}`).join(', ')} µs/message`)
        cells.push(cell)
      }
    }
    return { plan, cells }
  } finally {
    sink.close()
    await rabbit.stop()
  }
}

/** The cells as a Markdown table: CPU µs per message of each configuration, then the derived figures. */
export function rabbitMqTable(r: RabbitMqResults): string {
  const configs: RabbitMqConfig[] = ['off', 'pathwise', 'pathwise-auto', 'header', 'dd-trace', 'dd-trace-dsm']
  const cell = (f: Figure | undefined) => (f === undefined ? '–' : f.rounds.length > 1 ? `${number(f.median)} (${number(f.min)}–${number(f.max)})` : number(f.median))
  const head = ['Node', 'client', ...configs.map((c) => LABELS[c]), ...DERIVED, 'rounds']
  return [
    `| ${head.join(' | ')} |`,
    `|---|---|${head.slice(2).map(() => '---:').join('|')}|`,
    ...r.cells.map((c) => `| ${c.node.split('.')[0].slice(1)} | ${c.client} | ${[...configs.map((k) => cell(c.cpu[k])), ...DERIVED.map((d) => cell(c.derived[d]))].join(' | ')} | ${c.rounds} |`),
  ].join('\n')
}
