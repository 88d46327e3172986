import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { VERSION } from 'pathwise'
import { handleApi, type ApiContext, type Status } from './views/api.js'
import { Forwarder } from './intake/forward.js'
import { RequestGuard } from './http/guard.js'
import { DecodePool, DEFAULT_DECODE_HEAP_MB, DEFAULT_DECODE_WORKERS } from './intake/decode-pool.js'
import { BodyBudget, DEFAULT_LIMITS, IntakeError, readBody, type IntakeLimits } from './intake/body.js'
import { Metrics } from './prometheus/metrics.js'
import { TransactionMetrics } from './prometheus/transaction-metrics.js'
import { TransactionTracker, transactionsAnswer, type TransactionLimits } from './views/transactions.js'
import { PrometheusSource } from './prometheus/fleet.js'
import { PromqlError } from './prometheus/promql.js'
import { Persistence } from './model/persistence.js'
import { staticFile } from './http/static.js'
import { BUCKET_MS, Store } from './model/store.js'
import { ingestInSlices } from './intake/transfer.js'
import { printable } from './terminal/printable.js'

/**
 * The pathwise agent: an HTTP intake for DSM payloads from pathwise and Datadog's tracers, the
 * JSON API, `/metrics` and the page. It also answers what a tracer pointed at a Datadog Agent
 * expects (`/info`, traces, stats, telemetry), taking those payloads without storing them, so that
 * the tracer logs no errors. Bad input gets a 400 and changes nothing; nothing a client sends can
 * stop the server.
 */

export interface AgentOptions {
  /** Default 127.0.0.1: the agent listens on loopback unless told otherwise. */
  host?: string
  /** Default 8126, the Datadog Agent's port; 0 for any free port. */
  port?: number
  /** Another Agent that every payload is passed on to, unchanged. */
  forward?: string
  /** SQLite file keeping history across restarts. */
  db?: string
  /** How long the database keeps history. Default 7 days. */
  dbRetentionMs?: number
  /** How often changes are written to the database: what a kill -9 can lose. Default 2 s. */
  dbFlushMs?: number
  /** In-memory retention. Default one hour. */
  windowMs?: number
  maxSeries?: number
  maxCells?: number
  limits?: Partial<IntakeLimits>
  /** Connections open at once; past them new ones are closed at once. Default 512. */
  maxConnections?: number
  /** Clock (ms since the epoch); tests set it. */
  now?: () => number
  /** Where the agent reports what it does (rejections, failures); default stderr. */
  log?: (line: string) => void
  /** Host names, besides localhost and the listening address, that requests may name (see guard.ts). */
  allowedHosts?: string[]
  /** Caps of transaction tracking (ids remembered, pairs, cells): see transactions.ts. */
  transactionLimits?: Partial<TransactionLimits>
  /** Draw the page and /api/* from this Prometheus (the fleet of agents it scrapes) instead of from memory. */
  prometheus?: string
  /** Label sets (stats point series) counted in /metrics' histograms. Default 1000. */
  maxMetricSeries?: number
}

export interface RunningAgent {
  url: string
  host: string
  port: number
  store: Store
  close(): Promise<void>
}

const TRACE_PATHS = new Set(['/v0.3/traces', '/v0.4/traces', '/v0.5/traces', '/v0.7/traces'])
/** Trace and telemetry bodies are only counted and forwarded, never decoded; the Datadog Agent takes up to 50 MB. */
const MAX_OTHER_BODY = 50 * 1024 * 1024
/**
 * Pipeline payloads decoding or waiting to, bodies read: past this, 503. Bodies still arriving do
 * not count (a client trickling one holds only its connection, for at most the body timeout).
 */
const MAX_INTAKE_IN_FLIGHT = 16
const DEFAULT_MAX_CONNECTIONS = 512
/** At most one rejection line per this many ms in the log, so that a misbehaving sender cannot flood it. */
const REJECTION_LOG_MS = 5000
const DROP_LOG_MS = 60_000

export async function startAgent(options: AgentOptions = {}): Promise<RunningAgent> {
  const host = options.host ?? '127.0.0.1'
  const limits: IntakeLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const sink = options.log ?? ((line: string) => process.stderr.write(`pathwise agent: ${line}\n`))
  // Lines carry what tracers sent (names, reasons): never raw to the terminal.
  const log = (line: string): void => sink(printable(line))
  const guard = new RequestGuard({ host, allowedHosts: options.allowedHosts, log })
  const maxSeries = options.maxSeries ?? 10_000
  const maxCells = options.maxCells ?? 100_000
  const store = new Store({
    windowMs: options.windowMs ?? 3_600_000,
    maxSeries,
    maxCells,
    now: options.now ?? Date.now,
  })
  const forwarder = options.forward ? new Forwarder(options.forward) : null
  const persistence = options.db
    ? await Persistence.open(store, { path: options.db, retentionMs: options.dbRetentionMs ?? 7 * 86_400_000, flushMs: options.dbFlushMs, log })
    : null
  const metrics = new Metrics(store, options.maxMetricSeries)
  const transactions = new TransactionTracker(store.windowMs, options.now ?? Date.now, options.transactionLimits)
  const transactionMetrics = new TransactionMetrics(transactions)
  const startedAt = Date.now()
  const counts = { accepted: 0, rejected: 0, other: 0 }
  let lastRejection: Status['lastRejection'] = null
  let lastRejectionLog = 0
  let unloggedRejections = 0
  let intakeInFlight = 0
  const decoder = new DecodePool({ size: DEFAULT_DECODE_WORKERS, heapMb: DEFAULT_DECODE_HEAP_MB })
  // Pipeline bodies held at once, arriving or decoding, take no more than the in-flight limit's worth of full-size ones.
  const bodies = new BodyBudget(MAX_INTAKE_IN_FLIGHT * limits.maxBodyBytes)
  let port = 0

  const ctx: ApiContext = {
    store,
    status: () => ({
      version: VERSION,
      startedAt,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      windowSeconds: store.windowMs / 1000,
      payloads: { ...counts },
      points: { received: store.counters.points, dropped: store.counters.dropped, outOfWindow: store.counters.outOfWindow },
      series: store.seriesCount,
      cells: store.cells,
      lastPayloadAt: store.lastPayloadAt,
      lastRejection,
      forward: forwarder ? { ...forwarder.stats } : null,
      db: options.db ?? null,
      dbWrites: persistence?.status() ?? null,
      prometheus: null,
    }),
  }
  const fleet = options.prometheus ? new PrometheusSource({ url: options.prometheus, windowMs: store.windowMs, maxSeries, status: ctx.status }) : null

  function rejectPayload(req: http.IncomingMessage, res: http.ServerResponse, { status, message: reason }: IntakeError): void {
    counts.rejected++
    lastRejection = { at: Date.now(), reason }
    // Tracers retry a 503 later.
    if (status === 503) res.setHeader('Retry-After', '1')
    // A body not read to its end is left unread: close the connection rather than read it.
    send(res, status, `${reason}\n`, 'text/plain; charset=utf-8', !req.complete)
    const now = Date.now()
    if (now - lastRejectionLog >= REJECTION_LOG_MS) {
      log(`rejected a payload: ${reason}${unloggedRejections > 0 ? ` (and ${unloggedRejections} more since the last line)` : ''}`)
      lastRejectionLog = now
      unloggedRejections = 0
    } else {
      unloggedRejections++
    }
  }

  /** Decodes a body and merges it into the store, counted toward the in-flight limit. */
  async function ingest(body: Buffer): Promise<void> {
    if (intakeInFlight >= MAX_INTAKE_IN_FLIGHT) throw new IntakeError('busy: too many payloads in progress, retry later', 503)
    intakeInFlight++
    try {
      await decoder.decode(body, limits.maxDecompressedBytes, async (transfer) => {
        await ingestInSlices(store, transfer, (slice) => metrics.observe(slice))
        await transactions.ingest(transfer.transactions)
      })
    } finally {
      intakeInFlight--
    }
    reportDrops()
  }

  /** Points dropped past the caps are answered 200 (the tracer could do nothing else): say so in the log, at most once a minute. */
  let droppedReported = 0
  let lastDropLog = 0
  function reportDrops(): void {
    const dropped = store.counters.dropped
    const now = Date.now()
    if (dropped === droppedReported || now - lastDropLog < DROP_LOG_MS) return
    log(
      `dropped ${dropped - droppedReported} points past the caps (${store.seriesCount} series of --max-series ${maxSeries}, ` +
        `${store.cells} cells of --max-cells ${maxCells}); /api/status counts them`,
    )
    droppedReported = dropped
    lastDropLog = now
  }

  async function pipelineStats(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const body = await readBody(req, limits.maxBodyBytes, limits.bodyTimeoutMs, bodies)
      try {
        await ingest(body)
      } finally {
        bodies.give(body.length)
      }
      counts.accepted++
      forwarder?.send(req.method ?? 'POST', req.url ?? '/v0.1/pipeline_stats', req.headers, body)
      send(res, 200, 'OK\n')
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err
      rejectPayload(req, res, err)
    }
  }

  /** Traces, stats and telemetry: read, forwarded if asked, answered as the Agent does, never stored. */
  async function passThrough(req: http.IncomingMessage, res: http.ServerResponse, status: number, answer: string, type: string): Promise<void> {
    try {
      const body = await readBody(req, MAX_OTHER_BODY, limits.bodyTimeoutMs)
      counts.other++
      forwarder?.send(req.method ?? 'POST', req.url ?? '/', req.headers, body)
      send(res, status, answer, type)
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err
      send(res, err.status, `${err.message}\n`, 'text/plain; charset=utf-8', true)
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const refusal = guard.check(req)
    if (refusal) return send(res, 403, `${refusal}\n`, 'text/plain; charset=utf-8', !req.complete)
    const url = new URL(req.url ?? '/', 'http://agent')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const write = method === 'POST' || method === 'PUT'
    if (path === '/v0.1/pipeline_stats') {
      if (write) return pipelineStats(req, res)
      return send(res, 405, 'use POST\n')
    }
    if (write && TRACE_PATHS.has(path)) return passThrough(req, res, 200, '{"rate_by_service":{}}', 'application/json')
    if (write && (path === '/v0.6/stats' || path.startsWith('/telemetry/proxy/'))) return passThrough(req, res, 202, '{}', 'application/json')
    if (method !== 'GET' && method !== 'HEAD') {
      req.resume()
      // /v0.7/config included: a 404 there is how an Agent says remote configuration is off, which tracers accept quietly.
      return send(res, 404, 'not found\n')
    }
    if (path === '/info') return send(res, 200, JSON.stringify(info(port)), 'application/json')
    if (path === '/metrics') return sendMetrics(req, res)
    if (path === '/api/transactions') {
      const answer = transactionsAnswer(transactions, url)
      return send(res, answer.status, JSON.stringify(answer.body), 'application/json')
    }
    if (path.startsWith('/api/')) {
      let view = ctx
      try {
        if (fleet) view = await fleet.context(url)
      } catch (err) {
        if (!(err instanceof PromqlError)) throw err
        return send(res, 502, JSON.stringify({ error: err.message }), 'application/json')
      }
      const answer = handleApi(view, url)
      if (answer) return send(res, answer.status, JSON.stringify(answer.body), 'application/json')
      return send(res, 404, JSON.stringify({ error: `no route ${path}` }), 'application/json')
    }
    const file = await staticFile(path)
    if (file) return send(res, 200, file.body, file.type)
    send(res, 404, 'not found\n')
  }

  /** /metrics streamed, gzipped when asked (Prometheus asks): its histograms' text shrinks about 20-fold (README "Many hosts"). */
  async function sendMetrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding']))
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store', ...(gzip && { 'Content-Encoding': 'gzip' }) })
    async function* text(): AsyncGenerator<string> {
      yield* metrics.render(ctx.status())
      yield await transactionMetrics.render()
    }
    await pipeline([Readable.from(text()), ...(gzip ? [createGzip()] : []), res])
  }

  // Headers get the body's time limit too; Node checks it every second rather than every 30.
  const timeouts = { headersTimeout: limits.bodyTimeoutMs, requestTimeout: 2 * limits.bodyTimeoutMs, connectionsCheckingInterval: 1000 }
  const server = http.createServer(timeouts, (req, res) => {
    handle(req, res).catch((err: Error) => {
      log(`error answering ${req.method} ${req.url}: ${err.message}`)
      if (!res.headersSent) send(res, 500, 'internal error\n', 'text/plain; charset=utf-8', true)
      else res.destroy()
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 8126, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    persistence?.close()
    throw err
  }
  port = (server.address() as AddressInfo).port
  server.on('error', (err) => log(`server error: ${err.message}`))
  const evictTimer = setInterval(() => store.evict(), BUCKET_MS)
  evictTimer.unref()

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(evictTimer)
        forwarder?.close()
        void decoder.close()
        server.close(() => {
          persistence?.close()
          resolve()
        })
        server.closeAllConnections()
      }),
  }
}

function send(res: http.ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8', close = false): void {
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }
  if (close) headers.Connection = 'close'
  res.writeHead(status, headers)
  res.end(body)
}

/**
 * What tracers read from `/info`: the endpoints they may use. The version is the Agent API this
 * agent speaks (7.34 brought `/v0.1/pipeline_stats`); the `/v0.6/stats` endpoint is not listed,
 * so that tracers do not compute client-side stats and drop traces for an agent that keeps none.
 */
function info(port: number): object {
  return {
    version: '7.34.0-pathwise',
    pathwise_version: VERSION,
    endpoints: ['/v0.4/traces', '/v0.5/traces', '/v0.7/traces', '/v0.1/pipeline_stats', '/telemetry/proxy/', '/info'],
    feature_flags: [],
    client_drop_p0s: false,
    span_meta_structs: false,
    long_running_spans: false,
    config: { default_env: 'none', receiver_port: port, statsd_port: 8125 },
  }
}
