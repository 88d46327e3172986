/**
 * Case 10, what DSM costs a NATS message and an HTTP request, the whole process's CPU per message
 * (hops-child.mjs does the work): NATS core publish and a callback subscription through a real
 * nats-server, and fetch POSTing to a node:http server of the same process (both ends of the hop
 * in one process: a request costs pathwise a produce and a consume checkpoint). On Node 24 and
 * Node 20, in these configurations, one process each: off; pathwise's explicit API
 * (instrumentNats, instrumentHttp); pathwise's automatic mode (`-r pathwise/register`, HTTP hops
 * by DD_DATA_STREAMS_HTTP_ENABLED); the 28-character header alone, added by the application (what
 * carrying it costs the client); and, for HTTP, dd-trace's tracing (`-r dd-trace/init`; dd-trace
 * records no DSM checkpoint for HTTP, and traces only nats.js 3, `@nats-io/nats-core`, not the
 * `nats` 2 measured here). Rounds rotate the configurations; the derived figures are taken within
 * each round. Each process tells what its first message carried: a configuration that did not do
 * what it claims fails the case.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { startNats } from '../../test/peers/nats.js'
import type { Figure, Settings } from '../harness.js'
import { node24Binary } from '../node24.js'
import { number } from '../table.js'
import { childEnv, forkChild, perMessage, runRounds, type Child } from './round-children.js'

const CHILD = fileURLToPath(new URL('./hops-child.mjs', import.meta.url))

export type HopTransport = 'nats' | 'http'
export type HopConfig = 'off' | 'pathwise' | 'pathwise-auto' | 'header' | 'dd-trace'
export const HOP_CONFIGS: Record<HopTransport, HopConfig[]> = {
  nats: ['off', 'pathwise', 'pathwise-auto', 'header'],
  http: ['off', 'pathwise', 'pathwise-auto', 'header', 'dd-trace'],
}
const LABELS: Record<HopConfig, string> = {
  off: 'off',
  pathwise: 'pathwise',
  'pathwise-auto': 'pathwise, automatic mode',
  header: 'header alone',
  'dd-trace': 'dd-trace tracing',
}

interface Plan {
  messages: Record<HopTransport, number>
  warmUp: number
  rounds: number
}
const FULL_PLAN: Plan = { messages: { nats: 20_000, http: 4_000 }, warmUp: 2_000, rounds: 7 }
const QUICK_PLAN: Plan = { messages: { nats: 1_000, http: 200 }, warmUp: 200, rounds: 1 }

export interface HopCell {
  node: string
  transport: HopTransport
  messages: number
  rounds: number
  /** CPU µs per message (NATS) or request (HTTP) of the process, per configuration. */
  cpu: Partial<Record<HopConfig, Figure>>
  /** Within each round: pathwise − off, automatic − off, header − off, pathwise − header, dd-trace − off. */
  derived: Record<string, Figure>
  /** The header names each configuration's first message carried. */
  seen: Partial<Record<HopConfig, string[]>>
}

export interface HopsResults {
  plan: Plan
  cells: HopCell[]
}

const PATHWAY = 'dd-pathway-ctx-base64'
const TRACE = 'x-datadog-trace-id'

function expectation(config: HopConfig, headers: string[]): string | undefined {
  const has = (h: string) => headers.includes(h)
  if (config === 'off') return headers.length === 0 ? undefined : `expected no header, got [${headers.join(', ')}]`
  if (config === 'dd-trace') return has(TRACE) && !has(PATHWAY) ? undefined : `expected ${TRACE} and no ${PATHWAY}, got [${headers.join(', ')}]`
  return has(PATHWAY) && !has(TRACE) ? undefined : `expected ${PATHWAY} alone, got [${headers.join(', ')}]`
}

function startChild(transport: HopTransport, config: HopConfig, execPath: string, servers: string, agentUrl: string, warmUp: number, forceDdTrace: boolean): Child<HopConfig> {
  const env = childEnv({ DD_TRACE_AGENT_URL: agentUrl, DD_SERVICE: `bench-${transport}`, DD_ENV: 'bench', BENCH_WARM_UP: String(warmUp) })
  if (config === 'pathwise' || config === 'pathwise-auto') env.DD_DATA_STREAMS_ENABLED = 'true'
  if (config === 'pathwise-auto') Object.assign(env, { DD_DATA_STREAMS_HTTP_ENABLED: 'true', PATHWISE_HTTP_ALLOWED_HOSTS: '127.0.0.1' })
  if (config === 'dd-trace' && forceDdTrace) env.DD_INJECT_FORCE = 'true'
  const execArgv = config === 'pathwise-auto' ? ['-r', 'pathwise/register'] : config === 'dd-trace' ? ['-r', 'dd-trace/init'] : []
  return forkChild(CHILD, [transport, config, servers], config, { execPath, execArgv, env, what: `${transport} ${config}` })
}

async function runCell(transport: HopTransport, execPath: string, forceDdTrace: boolean, plan: Plan, servers: string, agentUrl: string): Promise<HopCell> {
  const configs = HOP_CONFIGS[transport]
  const messages = plan.messages[transport]
  const children = configs.map((c) => startChild(transport, c, execPath, servers, agentUrl, plan.warmUp, forceDdTrace))
  const { node, perRound } = await runRounds(children, plan.rounds, messages, (config, headers) => {
    const wrong = expectation(config, headers)
    return wrong === undefined ? undefined : `case 10, ${transport}, ${LABELS[config]}: ${wrong}`
  })
  const m = perMessage(perRound, messages)
  const derived: Record<string, Figure> = m.pathwise()
  if (configs.includes('dd-trace')) derived['dd-trace − off'] = m.minus('dd-trace', 'off')
  return {
    node,
    transport,
    messages,
    rounds: plan.rounds,
    cpu: m.cpu(configs),
    derived,
    seen: m.seen(configs),
  }
}

/** Every cell, Node 24 first (dd-trace's own platform; on Node 20 its process gets DD_INJECT_FORCE=true). */
export async function runHops(s: Settings, log: (line: string) => void = () => {}): Promise<HopsResults> {
  const plan = s.quick ? QUICK_PLAN : FULL_PLAN
  const runtimes = [
    { execPath: await node24Binary(log), forceDdTrace: false },
    { execPath: process.execPath, forceDdTrace: true },
  ]
  const nats = await startNats()
  const sink = createServer((req, res) => (req.resume(), req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))))
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  try {
    const cells: HopCell[] = []
    for (const runtime of runtimes) {
      for (const transport of ['nats', 'http'] as const) {
        const cell = await runCell(transport, runtime.execPath, runtime.forceDdTrace, plan, nats.servers, `http://127.0.0.1:${(sink.address() as AddressInfo).port}`)
        log(`case 10: ${cell.node} ${transport}: ${Object.entries(cell.cpu).map(([c, f]) => `${c} ${number(f.median)}`).join(', ')} µs/message`)
        cells.push(cell)
      }
    }
    return { plan, cells }
  } finally {
    sink.close()
    await nats.stop()
  }
}

/** The cells as a Markdown table: CPU µs per message of each configuration, then the derived figures. */
export function hopsTable(r: HopsResults): string {
  const configs: HopConfig[] = ['off', 'pathwise', 'pathwise-auto', 'header', 'dd-trace']
  const derived = ['pathwise − off', 'automatic − off', 'header − off', 'pathwise − header', 'dd-trace − off']
  const cell = (f: Figure | undefined) => (f === undefined ? '–' : f.rounds.length > 1 ? `${number(f.median)} (${number(f.min)}–${number(f.max)})` : number(f.median))
  const head = ['Node', 'hop', ...configs.map((c) => LABELS[c]), ...derived, 'rounds']
  return [
    `| ${head.join(' | ')} |`,
    `|---|---|${head.slice(2).map(() => '---:').join('|')}|`,
    ...r.cells.map((c) => `| ${c.node.split('.')[0].slice(1)} | ${c.transport} | ${[...configs.map((k) => cell(c.cpu[k])), ...derived.map((d) => cell(c.derived[d]))].join(' | ')} | ${c.rounds} |`),
  ].join('\n')
}
