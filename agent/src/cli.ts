/**
 * The agent's commands, run by `pathwise agent|top` (the library's bin) and by `pathwise-agent`.
 *   pathwise agent [--host 127.0.0.1] [--port 8126] [--forward URL] [--db FILE] ...
 *   pathwise top [--agent http://127.0.0.1:8126] [--once] ...
 */
import { parseArgs } from 'node:util'
import { VERSION } from 'pathwise'
import { hostNames } from './http/guard.js'
import { startAgent } from './server.js'
import { runTop } from './terminal/top.js'

const AGENT_USAGE = `  pathwise agent [options]   a local DSM intake: receives tracers' payloads, shows the pipeline
    --host HOST               address to listen on (default 127.0.0.1, loopback only)
    --port PORT               port (default 8126, the Datadog Agent's)
    --allowed-hosts NAMES     host names, comma-separated, that requests may address it by besides
                              localhost, the --host name and IP addresses (others get 403)
    --forward URL             also pass every payload on, unchanged, to this Agent
    --db FILE                 keep history in this SQLite file across restarts (one agent a file)
    --db-retention DURATION   how long the database keeps history (default 7d)
    --db-flush-interval DURATION
                              how often changes are written: what a kill -9 can lose (default 2s)
    --window DURATION         how long memory keeps history (default 1h)
    --max-body BYTES          largest payload accepted, compressed (default 10485760)
    --max-series N            most series (service, pathway, edge) kept (default 10000)
    --max-cells N             most cells kept, a safety bound (default 2000000; a series takes one per 10 s
                              of the last 16 minutes and one per minute of --window beyond: 140 an hour)
    --max-decompressed BYTES  largest payload accepted, decompressed (default 67108864)
    --body-timeout DURATION   time for a request's whole body to arrive, else 408 (default 5s)
    --max-connections N       connections open at once; more are closed at once (default 512)
    --max-metric-series N     stats point series counted in /metrics' histograms (default 10000,
                              as --max-series; each writes the buckets it has used, README "Many hosts")
    --prometheus URL          draw the page and /api/* from this Prometheus, over every agent it
                              scrapes, instead of from this agent's memory (README "Many hosts")
    -h, --help                this help
`

const TOP_USAGE = `  pathwise top [options]     the agent's pipeline in the terminal, refreshed every second
    --agent URL               the agent (default http://127.0.0.1:8126)
    --range SECONDS           how far back rates and quantiles look (default 60)
    --interval SECONDS        refresh period (default 1)
    --once                    print one frame and exit
    -h, --help                this help
`

const DURATIONS = '  Durations: a number of seconds, or with a unit: 90s, 30m, 1h, 7d.\n'

const USAGE = `pathwise ${VERSION}

Usage:
${AGENT_USAGE}${TOP_USAGE}${DURATIONS}`

/** A command's own usage, for `pathwise <command> --help`. */
const usageOf = (command: string): string => `pathwise ${VERSION}\n\nUsage:\n${command}${command === AGENT_USAGE ? DURATIONS : ''}`

/** Seconds, or a number with a unit (s, m, h, d), in ms. */
function duration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim())
  if (!m) fail(`--${name}: not a duration: ${text}`)
  const unit = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as '' | 's' | 'm' | 'h' | 'd']
  return Number(m[1]) * unit
}

/** A timer's period: over 2^31 - 1 ms, Node would fire it every millisecond instead. */
function period(ms: number, name: string): number {
  if (!(ms > 0 && ms <= 2 ** 31 - 1)) fail(`--${name}: must be more than 0 and at most 24d`)
  return ms
}

function integer(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) fail(`--${name}: not a non-negative integer: ${text}`)
  return n
}

function fail(message: string): never {
  process.stderr.write(`pathwise: ${message}\n\n${USAGE}`)
  process.exit(2)
}

async function agent(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'allowed-hosts': { type: 'string' },
      forward: { type: 'string' },
      db: { type: 'string' },
      'db-retention': { type: 'string' },
      'db-flush-interval': { type: 'string' },
      window: { type: 'string' },
      'max-body': { type: 'string' },
      'max-series': { type: 'string' },
      'max-cells': { type: 'string' },
      'max-decompressed': { type: 'string' },
      'body-timeout': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-metric-series': { type: 'string' },
      prometheus: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return void process.stdout.write(usageOf(AGENT_USAGE))
  const allowedHosts = values['allowed-hosts']?.split(',')
  const running = await startAgent({
    maxSeries: integer(values['max-series'], 'max-series'),
    maxCells: integer(values['max-cells'], 'max-cells'),
    host: values.host,
    port: integer(values.port, 'port'),
    allowedHosts,
    forward: values.forward,
    db: values.db,
    dbRetentionMs: values['db-retention'] === undefined ? undefined : duration(values['db-retention'], 'db-retention'),
    dbFlushMs: values['db-flush-interval'] === undefined ? undefined : period(duration(values['db-flush-interval'], 'db-flush-interval'), 'db-flush-interval'),
    windowMs: values.window === undefined ? undefined : duration(values.window, 'window'),
    limits: {
      ...(values['max-body'] !== undefined && { maxBodyBytes: integer(values['max-body'], 'max-body') }),
      ...(values['max-decompressed'] !== undefined && { maxDecompressedBytes: integer(values['max-decompressed'], 'max-decompressed') }),
      ...(values['body-timeout'] !== undefined && { bodyTimeoutMs: period(duration(values['body-timeout'], 'body-timeout'), 'body-timeout') }),
    },
    maxConnections: integer(values['max-connections'], 'max-connections'),
    maxMetricSeries: integer(values['max-metric-series'], 'max-metric-series'),
    prometheus: values.prometheus,
  })
  process.stdout.write(`pathwise agent ${VERSION} listening on ${running.url}: the pipeline at ${running.url}/, JSON at ${running.url}/api/summary\n`)
  if (!/^(127\.|::1$|localhost$)/.test(running.host)) {
    const names = hostNames(running.host, allowedHosts).join(', ')
    process.stdout.write(
      `pathwise agent: listening on ${running.host}, reachable from other machines by IP address, by name only as ${names} (--allowed-hosts adds names; other names get 403, against DNS rebinding)\n`,
    )
  }
  if (values.forward) process.stdout.write(`pathwise agent: forwarding every payload to ${values.forward}\n`)
  if (values.prometheus) {
    process.stdout.write(
      `pathwise agent: the page and /api/* show the fleet that ${values.prometheus} scrapes; it needs a scrape every 10 s or more often (lag pairs offsets of the same 10 s bucket: README "Many hosts")\n`,
    )
  }
  const stop = (): void => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

async function top(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      agent: { type: 'string' },
      range: { type: 'string' },
      interval: { type: 'string' },
      once: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return void process.stdout.write(usageOf(TOP_USAGE))
  const interval = values.interval === undefined ? 1 : Number(values.interval)
  if (!(interval > 0)) fail(`--interval: not a positive number: ${values.interval}`)
  process.exitCode = await runTop({
    agent: values.agent ?? 'http://127.0.0.1:8126',
    rangeSeconds: integer(values.range, 'range') ?? 60,
    intervalMs: interval * 1000,
    once: values.once ?? false,
  })
}

/** Runs the command in `argv` (the arguments after the program's name); exits the process on failure. */
export async function main(argv: string[]): Promise<void> {
  try {
    await run(argv)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'EADDRINUSE' ? ' (is a Datadog Agent already there? choose another --port)' : ''
    process.stderr.write(`pathwise: ${(err as Error).message}${hint}\n`)
    process.exit(1)
  }
}

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === 'agent') return agent(rest)
  if (command === 'top') return top(rest)
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE)
    return
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  fail(`unknown command: ${command}`)
}

