import { warnOnce, type Logger } from '../common/logger.js'
import { splitPayload, type Payload } from './payload.js'
import { sleep } from './unref.js'

/** How long one POST may take, in two phases. */
export interface Deadlines {
  /** To connect and hand the whole body to the network. */
  sendMs: number
  /** Then, for the answer's status. */
  answerMs: number
}

/** The `code` of a rejection whose body may have reached the Agent: resending it could count it twice. */
export const UNCONFIRMED = 'PATHWISE_UNCONFIRMED'

/** A rejection with code UNCONFIRMED; `cause` is what ended the exchange. */
export function unconfirmed(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { code: UNCONFIRMED })
}

/** How payloads reach the Agent: `node-transport.ts` on Node, `fetch-transport.ts` elsewhere. */
export interface Transport {
  /**
   * POSTs `body` and resolves with the response status. Rejects with an `unconfirmed()` error when
   * the Agent may have the body (it went out and no answer came), with any other error when the
   * Agent cannot have taken it. Opens nothing that keeps the process alive.
   */
  post(url: string, headers: Record<string, string>, body: Uint8Array, deadlines: Deadlines): Promise<number>
  /** GETs `url`: its JSON body, or undefined for anything but a 200 with JSON of at most MAX_JSON_BYTES; rejects when the request fails. */
  getJson(url: string, deadlines: Deadlines): Promise<unknown>
  /** Compresses off the main thread where the runtime can (Node's thread pool, CompressionStream). */
  gzip(data: Uint8Array): Promise<Uint8Array>
  gunzip(data: Uint8Array): Promise<Uint8Array>
}

/** The most a JSON answer (the Agent's `/info`) may take. */
export const MAX_JSON_BYTES = 64 * 1024

export interface AgentExporterOptions {
  /** The Agent's base URL, e.g. `http://localhost:8126`. */
  url: string
  tracerVersion: string
  transport: Transport
  /** Per attempt, to connect and send the body. Default 2000. */
  timeoutMs?: number
  /** Per attempt, once the body is sent, for the answer; past it the payload is not resent. Default 10 000. */
  answerTimeoutMs?: number
  /** Attempts after the first, where the Agent cannot have taken the payload (see `deliver`). Default 2. */
  maxRetries?: number
  /** Wait before the first retry, doubled before each next one. Default 250. */
  backoffMs?: number
  /** Flushes whose payloads are kept while the Agent is away (at least 1); past this the oldest flush's are dropped. Default 10. */
  maxQueue?: number
  /**
   * Keeps the process alive for at most `ms`, until the returned function is called: how an
   * explicit flush outlives the rest of the program. Absent where the runtime decides (edge).
   */
  hold?: (ms: number) => () => void
  log: Logger
  /** Log each payload sent (size, buckets) and each failed attempt. */
  debug?: boolean
}

export interface ExporterStats {
  /** Payloads the Agent accepted. */
  sent: number
  /** Payloads given up: pushed out of a full queue, refused by the Agent (4xx but 413), too large even alone, or failing to compress. */
  dropped: number
  /** Failed attempts, each followed by a retry or by queueing: see `deliver`. */
  failures: number
  /** Payloads sent without an answer in time: perhaps taken, so not resent, and not known to be lost. */
  unconfirmed: number
  /** Payloads waiting for the Agent. */
  queued: number
  /** Payloads cut in two because the Agent answered 413 (each half then counts on its own). */
  split: number
}

/** What the caller knows about a payload. */
export interface PayloadInfo {
  /** The flush it belongs to: the queue keeps whole flushes (a payload without one is a flush alone). */
  flush?: number
}

/** A payload waiting for the Agent. */
interface Queued {
  /** Its layout, to cut it in two (its bytes go once compressed). */
  payload: Omit<Payload, 'bytes'>
  /** Compressed (undefined if compression failed). */
  body: Promise<Uint8Array | undefined>
  /** Its flush (see PayloadInfo); a payload sent alone gets a negative number of its own. */
  flush: number
}

export interface Delivery {
  /** Keep the process alive until this delivery ends (each step within its deadline). */
  hold?: boolean
}

type Outcome = 'sent' | 'dropped' | 'later' | 'unconfirmed' | 'too-large'

/** A hold outlasts the step it covers by this much, so that the step's own deadline ends it first. */
const HOLD_MARGIN_MS = 100

/**
 * Sends stats payloads to the Agent's `/v0.1/pipeline_stats`. Runtime-neutral.
 *
 * Never throws: monitoring must not break the application. A payload the Agent cannot have taken
 * (see `deliver`) is retried a bounded number of times, then kept in a bounded queue and sent,
 * oldest first, before the next payload. One the Agent may have taken is never sent twice. One
 * the Agent refuses as too large (413) is cut in two and both halves are sent in its place.
 * Payloads are delivered one at a time, in order.
 */
export class AgentExporter {
  /** Where payloads go, and with which headers: also what a synchronous send at exit uses. */
  readonly endpoint: string
  readonly headers: Readonly<Record<string, string>>
  private readonly transport: Transport
  private readonly deadlines: Deadlines
  private readonly maxRetries: number
  private readonly backoffMs: number
  private readonly maxQueue: number
  private readonly hold: ((ms: number) => () => void) | undefined
  private readonly log: Logger
  private readonly debug: boolean
  /** Payloads waiting, oldest first; the one in flight is not in here. */
  private readonly queue: Queued[] = []
  private draining: Promise<void> | undefined
  /** Whether the running drain keeps the process alive: a caller asked for it. */
  private held = false
  /** When the drain's current step (an attempt, a wait) ends at the latest, in ms since the epoch; 0 between steps. */
  private stepEnd = 0
  private release: (() => void) | undefined
  private readonly counts = { sent: 0, dropped: 0, failures: 0, unconfirmed: 0, split: 0 }
  /** The last flush number given to a payload sent alone. */
  private alone = 0

  constructor(options: AgentExporterOptions) {
    this.endpoint = `${options.url.replace(/\/+$/, '')}/v0.1/pipeline_stats`
    this.headers = {
      'Content-Type': 'application/msgpack',
      'Content-Encoding': 'gzip',
      'Datadog-Meta-Lang': 'javascript',
      'Datadog-Meta-Tracer-Version': options.tracerVersion,
    }
    this.transport = options.transport
    this.deadlines = { sendMs: options.timeoutMs ?? 2000, answerMs: options.answerTimeoutMs ?? 10_000 }
    this.maxRetries = Math.max(0, options.maxRetries ?? 2)
    this.backoffMs = options.backoffMs ?? 250
    this.maxQueue = Math.max(1, options.maxQueue ?? 10)
    this.hold = options.hold
    this.log = options.log
    this.debug = options.debug ?? false
  }

  get stats(): ExporterStats {
    return { ...this.counts, queued: this.queue.length }
  }

  /** Whether a delivery is under way (an attempt, or a wait between attempts). */
  get busy(): boolean {
    return this.draining !== undefined
  }

  /** The number of payloads given up so far (see `stats`). */
  get dropped(): number {
    return this.counts.dropped
  }

  /**
   * Compresses and sends a payload, after any payloads still queued, counting its flush toward
   * `maxQueue`. Resolves once the queue is delivered or the Agent has failed again; never rejects.
   */
  send(payload: Payload, info: PayloadInfo = {}, delivery: Delivery = {}): Promise<void> {
    this.enqueue(payload, info)
    return this.flush(delivery)
  }

  /**
   * Queues a payload and starts compressing it, without starting delivery (`flush` does).
   * Resolves once it is compressed (or failed to be): a caller building many lets compression keep up.
   */
  enqueue(payload: Payload, info: PayloadInfo = {}): Promise<unknown> {
    const { bytes, ...layout } = payload
    // queued before compression ends, so that payloads go out in the order they were sent
    const item = this.queued(layout, bytes, info.flush ?? --this.alone)
    this.queue.push(item)
    this.trim()
    return item.body
  }

  /** A payload starting to compress. */
  private queued(payload: Omit<Payload, 'bytes'>, raw: Uint8Array, flush: number): Queued {
    return { payload, body: this.compress(raw), flush }
  }

  /** Tries to deliver the queued payloads; resolves when done or when the Agent fails again. Never rejects. */
  flush(delivery: Delivery = {}): Promise<void> {
    // a drain already running also picks up what was queued since it started
    if (this.draining === undefined && this.queue.length > 0) this.draining = this.drain()
    if (this.draining === undefined) return Promise.resolve()
    if (delivery.hold === true && !this.held) {
      this.held = true
      this.rehold()
    }
    return this.draining
  }

  private async drain(): Promise<void> {
    try {
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
        // compression runs on Node's thread pool, which keeps the process alive by itself
        const body = await item.body
        if (body === undefined) {
          this.counts.dropped++
          continue
        }
        const outcome = await this.deliver(body)
        if (outcome === 'later') {
          this.queue.unshift(item)
          this.trim()
          return
        }
        if (outcome === 'too-large') await this.split(item, body)
        // an Agent this slow would keep each next payload as long: they wait for the next flush
        if (outcome === 'unconfirmed') return
      }
    } catch {
      // only a Logger that throws gets here: the payload in flight is lost, the queued ones stay
    } finally {
      // cleared here rather than in a .finally() so that no send can slip in between
      this.draining = undefined
      this.held = false
      this.rehold()
    }
  }

  /** Runs one step of the drain that ends by itself within `ms`, holding the process meanwhile if the drain is held. */
  private async step<T>(ms: number, run: () => Promise<T>): Promise<T> {
    this.stepEnd = Date.now() + ms
    this.rehold()
    try {
      return await run()
    } finally {
      this.stepEnd = 0
      this.rehold()
    }
  }

  /** Holds the process until the current step's deadline if the drain is held, else lets it go. */
  private rehold(): void {
    this.release?.()
    this.release = undefined
    if (this.held && this.stepEnd > 0 && this.hold !== undefined) {
      this.release = this.hold(Math.max(0, this.stepEnd - Date.now()) + HOLD_MARGIN_MS)
    }
  }

  /** Never rejects, even if `gzip` throws synchronously: undefined then, and the payload is dropped when its turn comes. */
  private async compress(payload: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      return await this.transport.gzip(payload)
    } catch (err) {
      warnOnce(this.log, 'gzip', `could not compress a stats payload, dropped: ${describe(err)}`)
      return undefined
    }
  }

  /**
   * A payload the Agent refused as too large: its two halves take its place at the head of the
   * queue (each cut again if refused again). One that holds a single point is dropped.
   */
  private async split(item: Queued, body: Uint8Array): Promise<void> {
    let halves: ReturnType<typeof splitPayload>
    try {
      halves = splitPayload(item.payload, await this.transport.gunzip(body))
    } catch (err) {
      this.counts.dropped++
      warnOnce(this.log, 'split', `could not cut a stats payload the Agent found too large, dropped: ${describe(err)}`)
      return
    }
    if (halves === undefined) {
      this.counts.dropped++
      warnOnce(this.log, 'too-large', `the Datadog Agent at ${this.endpoint} refused a stats payload of ${body.byteLength} bytes (gzip) as too large, and it holds one point alone; dropped`)
      return
    }
    this.counts.split++
    const [first, second] = halves.map(({ bytes, ...layout }) => this.queued(layout, bytes, item.flush))
    this.queue.unshift(first, second)
  }

  /** Drops the oldest flushes' payloads while more than `maxQueue` flushes wait. */
  private trim(): void {
    let flushes = 0
    for (let i = 0; i < this.queue.length; i++) if (i === 0 || this.queue[i].flush !== this.queue[i - 1].flush) flushes++
    let dropped = 0
    for (; flushes > this.maxQueue; flushes--) {
      const oldest = this.queue[0].flush
      while (this.queue.length > 0 && this.queue[0].flush === oldest) {
        this.queue.shift()
        dropped++
      }
    }
    if (dropped === 0) return
    this.counts.dropped += dropped
    warnOnce(
      this.log,
      'queue-full',
      `the Datadog Agent at ${this.endpoint} is not taking stats; keeping the payloads of the latest ${this.maxQueue} flushes, dropping older ones`,
    )
  }

  /**
   * One payload, retried only where the Agent cannot have taken it: no connection, a connection
   * reset or failing before the body was sent (the transport tells), or an answer of 408, 429 or
   * 5xx. A body sent and left unanswered within the deadline is not resent: 'unconfirmed'.
   */
  private async deliver(body: Uint8Array): Promise<Outcome> {
    let reason = ''
    const { sendMs, answerMs } = this.deadlines
    for (let attempt = 0; attempt <= this.maxRetries; attempt++) {
      if (attempt > 0) {
        const wait = this.backoffMs * 2 ** (attempt - 1)
        await this.step(wait, () => sleep(wait))
      }
      let status: number
      try {
        status = await this.step(sendMs + answerMs, async () => this.transport.post(this.endpoint, this.headers, body, this.deadlines))
      } catch (err) {
        reason = describe(err)
        if ((err as { code?: unknown } | null)?.code === UNCONFIRMED) {
          this.counts.unconfirmed++
          warnOnce(
            this.log,
            'unconfirmed',
            `the Datadog Agent at ${this.endpoint} did not confirm a stats payload (${reason}); ` +
              'not sending it again, so that it cannot count twice',
          )
          return 'unconfirmed'
        }
        this.failed(attempt, reason)
        continue
      }
      if (status >= 200 && status < 300) {
        this.counts.sent++
        if (this.debug) this.log.debug(`sent stats to ${this.endpoint}: ${body.byteLength} bytes gzipped`)
        return 'sent'
      }
      if (status === 413) return 'too-large'
      // 408 and 429 ask to come back later, like 5xx
      if (status >= 500 || status === 408 || status === 429) {
        reason = `status ${status}`
        this.failed(attempt, reason)
        continue
      }
      this.counts.dropped++
      if (status === 404) {
        warnOnce(
          this.log,
          'status-404',
          `the Datadog Agent at ${this.endpoint} answered 404: it is older than 7.34 and has no ` +
            'Data Streams endpoint; stats are dropped. Upgrade the Agent to 7.34 or later.',
        )
      } else {
        warnOnce(this.log, `status-${status}`, `the Datadog Agent at ${this.endpoint} refused stats with status ${status}; dropped`)
      }
      return 'dropped'
    }
    warnOnce(
      this.log,
      'unreachable',
      `cannot send stats to the Datadog Agent at ${this.endpoint} (${reason}); keeping up to ${this.maxQueue} payloads to retry`,
    )
    return 'later'
  }

  private failed(attempt: number, reason: string): void {
    this.counts.failures++
    if (this.debug) this.log.debug(`attempt ${attempt + 1} to send stats to ${this.endpoint} failed: ${reason}`)
  }
}

/** Node's connection errors to `localhost` are AggregateErrors with an empty message, and fetch hides its reason in `cause`. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  const text = err.message || (typeof code === 'string' ? code : err.name)
  return err.cause === undefined ? text : `${text}: ${describe(err.cause)}`
}
