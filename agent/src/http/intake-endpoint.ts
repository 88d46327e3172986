import type http from 'node:http'
import { BodyBudget, IntakeError, readBody, type IntakeLimits } from '../intake/body.js'
import type { DecodePool } from '../intake/decode-pool.js'
import type { Forwarder } from '../intake/forward.js'
import { ingestInSlices } from '../intake/transfer.js'
import type { Store } from '../model/store.js'
import type { Metrics } from '../prometheus/metrics.js'
import type { Status } from '../views/api.js'
import type { TransactionTracker } from '../views/transactions.js'
import { send } from './send.js'

/**
 * What tracers post. `POST /v0.1/pipeline_stats`: the body read within its limits (intake/body.ts),
 * decoded in a worker (intake/decode-pool.ts), then merged into the store, the /metrics histograms
 * and the transaction tracker, and passed on with `--forward`; a payload refused gets its status
 * and a one-line reason, and changes nothing. Traces, stats and telemetry: read, forwarded,
 * answered as the Datadog Agent does, never stored. Its state is what /api/status reports of the
 * intake: payloads counted, the last rejection.
 */

export interface IntakeEndpointOptions {
  store: Store
  decoder: DecodePool
  limits: IntakeLimits
  forwarder: Forwarder | null
  metrics: Metrics
  transactions: TransactionTracker
  /** The store's caps, named in the log line about points dropped past them. */
  maxSeries: number
  maxCells: number
  log: (line: string) => void
}

/** Trace and telemetry bodies are only counted and forwarded, never decoded; the Datadog Agent takes up to 50 MB. */
const MAX_OTHER_BODY = 50 * 1024 * 1024
/**
 * Pipeline payloads decoding or waiting to, bodies read: past this, 503. Bodies still arriving do
 * not count (a client trickling one holds only its connection, for at most the body timeout).
 * What they hold is bounded by the bodies' budget (16 × --max-body) and the decoders' (decode-pool.ts);
 * this many absorbs a second of 250 payloads while the main thread answers a large /api/summary.
 */
const MAX_INTAKE_IN_FLIGHT = 256
/** Bodies held at once, arriving or decoding: this many full-size ones. */
const MAX_BODIES = 16
/** At most one rejection line per this many ms in the log, so that a misbehaving sender cannot flood it. */
const REJECTION_LOG_MS = 5000
const DROP_LOG_MS = 60_000

export class IntakeEndpoint {
  readonly counts = { accepted: 0, rejected: 0, other: 0 }
  lastRejection: Status['lastRejection'] = null
  private lastRejectionLog = 0
  private unloggedRejections = 0
  private intakeInFlight = 0
  private readonly bodies: BodyBudget
  private droppedReported = 0
  private lastDropLog = 0
  /** Checkpoints tracers' own point caps dropped, by service, as their payloads said (pathwise's PathwiseDroppedPoints). */
  readonly tracerDrops = new Map<string, number>()
  private lastTracerDropLog = 0

  constructor(private readonly options: IntakeEndpointOptions) {
    // Pipeline bodies held at once, arriving or decoding, take no more than MAX_BODIES full-size ones.
    this.bodies = new BodyBudget(MAX_BODIES * options.limits.maxBodyBytes)
  }

  /** Whether payloads are passed on to another Agent, which might not read what this one does. */
  get forwarding(): boolean {
    return this.options.forwarder !== null
  }

  async pipelineStats(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { limits, forwarder } = this.options
    try {
      // Refused before its body is read: past the limit, reading it would only spend what is short.
      this.checkInFlight()
      const body = await readBody(req, limits.maxBodyBytes, limits.bodyTimeoutMs, this.bodies)
      try {
        await this.ingest(body)
      } finally {
        this.bodies.give(body.length)
      }
      this.counts.accepted++
      forwarder?.send(req.method ?? 'POST', req.url ?? '/v0.1/pipeline_stats', req.headers, body)
      send(res, 200, 'OK\n')
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err
      this.rejectPayload(req, res, err)
    }
  }

  /** Traces, stats and telemetry: read, forwarded if asked, answered as the Agent does, never stored. */
  async passThrough(req: http.IncomingMessage, res: http.ServerResponse, status: number, answer: string, type: string): Promise<void> {
    try {
      const body = await readBody(req, MAX_OTHER_BODY, this.options.limits.bodyTimeoutMs)
      this.counts.other++
      this.options.forwarder?.send(req.method ?? 'POST', req.url ?? '/', req.headers, body)
      send(res, status, answer, type)
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err
      send(res, err.status, `${err.message}\n`, 'text/plain; charset=utf-8', true)
    }
  }

  private rejectPayload(req: http.IncomingMessage, res: http.ServerResponse, { status, message: reason }: IntakeError): void {
    this.counts.rejected++
    this.lastRejection = { at: Date.now(), reason }
    // Tracers retry a 503 later.
    if (status === 503) res.setHeader('Retry-After', '1')
    // A body not read to its end is left unread: close the connection rather than read it.
    send(res, status, `${reason}\n`, 'text/plain; charset=utf-8', !req.complete)
    const now = Date.now()
    if (now - this.lastRejectionLog >= REJECTION_LOG_MS) {
      this.options.log(`rejected a payload: ${reason}${this.unloggedRejections > 0 ? ` (and ${this.unloggedRejections} more since the last line)` : ''}`)
      this.lastRejectionLog = now
      this.unloggedRejections = 0
    } else {
      this.unloggedRejections++
    }
  }

  /** Decodes a body and merges it into the store, counted toward the in-flight limit. */
  private async ingest(body: Buffer): Promise<void> {
    const { store, decoder, limits, metrics, transactions } = this.options
    this.checkInFlight()
    this.intakeInFlight++
    try {
      await decoder.decode(body, limits.maxDecompressedBytes, async (transfer) => {
        await ingestInSlices(store, transfer, (slice) => metrics.observe(slice))
        await transactions.ingest(transfer.transactions)
        if (transfer.droppedPoints > 0) this.tracerDropped(transfer.service, transfer.droppedPoints)
      })
    } finally {
      this.intakeInFlight--
    }
    this.reportDrops()
  }

  /** A tracer's point cap bit: counted for /api/status, and said in the log at most once a minute. */
  private tracerDropped(service: string, n: number): void {
    this.tracerDrops.set(service, (this.tracerDrops.get(service) ?? 0) + n)
    const now = Date.now()
    if (now - this.lastTracerDropLog < DROP_LOG_MS) return
    this.lastTracerDropLog = now
    this.options.log(`${service} dropped ${n} checkpoints of new pathways at its own point cap (pathwise's maxPoints); /api/status counts them`)
  }

  private checkInFlight(): void {
    if (this.intakeInFlight >= MAX_INTAKE_IN_FLIGHT) throw new IntakeError('busy: too many payloads in progress, retry later', 503)
  }

  /** Points dropped past the caps are answered 200 (the tracer could do nothing else): say so in the log, at most once a minute. */
  private reportDrops(): void {
    const { store, maxSeries, maxCells, log } = this.options
    const dropped = store.counters.dropped
    const now = Date.now()
    if (dropped === this.droppedReported || now - this.lastDropLog < DROP_LOG_MS) return
    log(
      `dropped ${dropped - this.droppedReported} points past the caps (${store.seriesCount} series of --max-series ${maxSeries}, ` +
        `${store.cells} cells of --max-cells ${maxCells}); /api/status counts them`,
    )
    this.droppedReported = dropped
    this.lastDropLog = now
  }
}
