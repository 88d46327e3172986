import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import { VERSION } from 'pathwise'
import { RequestGuard } from './http/guard.js'
import { IntakeEndpoint } from './http/intake-endpoint.js'
import { listen } from './http/listen.js'
import { router } from './http/router.js'
import { DEFAULT_LIMITS, type IntakeLimits } from './intake/body.js'
import { DecodePool, DEFAULT_DECODE_HEAP_MB, DEFAULT_DECODE_WORKERS, DEFAULT_HELD_BYTES } from './intake/decode-pool.js'
import { Forwarder } from './intake/forward.js'
import { Persistence } from './model/persistence.js'
import { BUCKET_MS, Store } from './model/store.js'
import { PrometheusSource } from './prometheus/fleet.js'
import { Metrics } from './prometheus/metrics.js'
import { TransactionMetrics } from './prometheus/transaction-metrics.js'
import { printable } from './terminal/printable.js'
import type { ApiContext, SummaryBody } from './views/api.js'
import { ViewCache } from './views/view-cache.js'
import { TransactionTracker, type TransactionLimits } from './views/transactions.js'

/**
 * The pathwise agent: an HTTP intake for DSM payloads from pathwise and Datadog's tracers, the
 * JSON API, `/metrics` and the page. It also answers what a tracer pointed at a Datadog Agent
 * expects (`/info`, traces, stats, telemetry), taking those payloads without storing them, so that
 * the tracer logs no errors. Bad input gets a 400 and changes nothing; nothing a client sends can
 * stop the server.
 *
 * `startAgent` only puts the parts together. A payload goes through http/ (the router, the intake
 * endpoint), intake/ (its body read and decoded, in worker threads), into model/ (the store); the
 * page and /api/* read views/ (the map, lag, transactions) of the store, /metrics and the fleet
 * view are prometheus/, `pathwise top` is terminal/.
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
  /** Host names, besides localhost and the listening address, that requests may name (see http/guard.ts). */
  allowedHosts?: string[]
  /** Caps of transaction tracking (ids remembered, pairs, cells): see views/transactions.ts. */
  transactionLimits?: Partial<TransactionLimits>
  /** Draw the page and /api/* from this Prometheus (the fleet of agents it scrapes) instead of from memory. */
  prometheus?: string
  /** Label sets (stats point series) counted in /metrics' histograms. Default 10,000, as --max-series. */
  maxMetricSeries?: number
}

/** Series kept, stats and backlog series together. */
export const DEFAULT_MAX_SERIES = 10_000
/**
 * Cells kept: a safety bound on memory that the default window does not reach before the series
 * cap (10,000 series keep about 145 cells each over an hour: 96 buckets of 10 s, 45 minutes, and a
 * bucket or two ahead), at a few hundred bytes a cell.
 */
export const DEFAULT_MAX_CELLS = 2_000_000

export interface RunningAgent {
  url: string
  host: string
  port: number
  store: Store
  close(): Promise<void>
}

export async function startAgent(options: AgentOptions = {}): Promise<RunningAgent> {
  const host = options.host ?? '127.0.0.1'
  const limits: IntakeLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const sink = options.log ?? ((line: string) => process.stderr.write(`pathwise agent: ${line}\n`))
  // Lines carry what tracers sent (names, reasons): never raw to the terminal.
  const log = (line: string): void => sink(printable(line))
  const guard = new RequestGuard({ host, allowedHosts: options.allowedHosts, log })
  const maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES
  const maxCells = options.maxCells ?? DEFAULT_MAX_CELLS
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
  const transactionMetrics = new TransactionMetrics(transactions, options.now ?? Date.now)
  const startedAt = Date.now()
  const decoder = new DecodePool({ size: DEFAULT_DECODE_WORKERS, heapMb: DEFAULT_DECODE_HEAP_MB, heldBytes: DEFAULT_HELD_BYTES })
  const intake = new IntakeEndpoint({ store, decoder, limits, forwarder, metrics, transactions, maxSeries, maxCells, log })
  let port = 0

  const ctx: ApiContext = {
    store,
    summaries: new ViewCache<SummaryBody>(),
    status: () => ({
      version: VERSION,
      startedAt,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      windowSeconds: store.windowMs / 1000,
      payloads: { ...intake.counts },
      points: {
        received: store.counters.points,
        dropped: store.counters.dropped,
        outOfWindow: store.counters.outOfWindow,
        droppedByTracers: Object.fromEntries(intake.tracerDrops),
      },
      series: store.seriesCount,
      cells: store.cells,
      lastPayloadAt: store.lastPayloadAt,
      lastRejection: intake.lastRejection,
      forward: forwarder ? { ...forwarder.stats } : null,
      db: options.db ?? null,
      dbWrites: persistence?.status() ?? null,
      prometheus: null,
    }),
  }
  const fleet = options.prometheus ? new PrometheusSource({ url: options.prometheus, windowMs: store.windowMs, maxSeries, status: ctx.status }) : null
  const handle = router({ guard, intake, api: ctx, fleet, transactions, metrics, transactionMetrics, port: () => port })

  let server: http.Server
  try {
    server = await listen(handle, { host, port: options.port ?? 8126, bodyTimeoutMs: limits.bodyTimeoutMs, maxConnections: options.maxConnections, log })
  } catch (err) {
    await persistence?.close()
    throw err
  }
  port = (server.address() as AddressInfo).port
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
          void (persistence?.close() ?? Promise.resolve()).then(resolve)
        })
        server.closeAllConnections()
      }),
  }
}
