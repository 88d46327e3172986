/**
 * A PromQL client for Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`), and for
 * anything that speaks it (Thanos, Mimir, VictoriaMetrics). Whatever answers is not trusted: each
 * request has a time limit for the whole answer, the body is read up to a size cap and dropped
 * past it, and the JSON is checked before anything is read from it. Every failure is a PromqlError.
 *
 * Answers are held against a budget shared by every query in flight (`AnswerBudget`): a query takes
 * its bytes from it as they arrive, and gives them back when the caller has read what it needed
 * (`Lease.release`); past the budget the query ends with PromqlBusy, answered 503 (http/router.ts),
 * or with PromqlTooLarge where the view's own answers hold most of it (it then asks in shards).
 * The body is kept in the chunks it arrives in, and decoded once whole: an answer dropped halfway
 * leaves garbage only outside the JS heap, which V8 counts and frees soonest.
 */

export interface PromqlOptions {
  /** Base URL, e.g. http://prometheus:9090 (a path prefix is kept). */
  url: string
  /** Time for a whole answer. Default 10 s. */
  timeoutMs?: number
  /** Largest answer read. Default 16 MiB. */
  maxBytes?: number
  /** Answer bytes held at once, all queries together. Default 64 MiB. */
  budgetBytes?: number
}

export interface InstantSample {
  metric: Record<string, string>
  value: number
}

export interface RangeSeries {
  metric: Record<string, string>
  /** (seconds since the epoch, value), oldest first. */
  values: Array<[number, number]>
}

export class PromqlError extends Error {}

/** Too many answers held at once: retry later. */
export class PromqlBusy extends PromqlError {}

/** Answer bytes held at once by all the queries of a client, whatever view sent them. */
export class AnswerBudget {
  private used = 0
  /** Bytes ever taken: how much has been read. */
  total = 0
  constructor(readonly bytes: number) {}

  get held(): number {
    return this.used
  }

  take(n: number): void {
    if (this.used + n > this.bytes) {
      throw new PromqlBusy(
        `busy: the answers being read from Prometheus would hold more than the fleet view's budget of ${mib(this.bytes)} (${mib(this.used)} held); retry shortly`,
      )
    }
    this.used += n
    this.total += n
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n)
  }
}

/** What one view holds of the budget; released at once when it has read its answers. */
export class Lease {
  private taken = 0
  private released = false
  constructor(private readonly budget: AnswerBudget) {}

  /** Bytes taken so far. */
  get bytes(): number {
    return this.taken
  }

  take(n: number): void {
    // A query still reading for a view that has given up (another of its queries failed) stops here.
    if (this.released) throw new PromqlError('the view this answer was for has ended')
    try {
      this.budget.take(n)
    } catch (err) {
      // This view's own answers hold most of the budget: it must ask for less at a time (in shards), not later.
      if (err instanceof PromqlBusy && this.taken + n > this.budget.held / 2) {
        throw new PromqlTooLarge(`the answers of one view would hold more than the fleet view's budget of ${mib(this.budget.bytes)} (${mib(this.taken + n)} of its own)`)
      }
      throw err
    }
    this.taken += n
  }

  release(): void {
    this.released = true
    this.budget.give(this.taken)
    this.taken = 0
  }
}

const mib = (bytes: number): string => `${Math.round((bytes / 1048576) * 10) / 10} MiB`

const DEFAULT_PROMQL_TIMEOUT_MS = 10_000
const DEFAULT_PROMQL_MAX_BYTES = 16 * 1024 * 1024
const DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024

/** An answer larger than the client's `maxBytes`: the caller may ask for less at a time. */
export class PromqlTooLarge extends PromqlError {}

export class PromqlClient {
  readonly url: string
  readonly budget: AnswerBudget
  private readonly timeoutMs: number
  readonly maxBytes: number

  constructor(options: PromqlOptions) {
    let base: URL
    try {
      base = new URL(options.url)
    } catch {
      throw new PromqlError(`not a URL: ${options.url}`)
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new PromqlError(`not an http(s) URL: ${options.url}`)
    this.url = base.href.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PROMQL_TIMEOUT_MS
    this.maxBytes = options.maxBytes ?? DEFAULT_PROMQL_MAX_BYTES
    this.budget = new AnswerBudget(Math.max(options.budgetBytes ?? DEFAULT_BUDGET_BYTES, this.maxBytes))
  }

  /**
   * An instant vector at `time` (seconds since the epoch). Its bytes stay taken from `lease` until
   * the caller releases it; without a lease, they are given back when it is returned.
   */
  async instant(query: string, time: number, lease?: Lease): Promise<InstantSample[]> {
    return this.held(lease, async (l) => {
      const data = await this.post('/api/v1/query', { query, time: String(time) }, l)
      return vectorOf(data, 'vector').map((s) => ({ metric: labelsOf(s.metric), value: sampleValue(s.value) }))
    })
  }

  /** A range vector from `start` to `end` every `step` seconds; `lease` as for `instant`. */
  async range(query: string, start: number, end: number, step: number, lease?: Lease): Promise<RangeSeries[]> {
    return this.held(lease, async (l) => {
      const data = await this.post('/api/v1/query_range', { query, start: String(start), end: String(end), step: String(step) }, l)
      return vectorOf(data, 'matrix').map((s) => {
        if (!Array.isArray(s.values)) throw new PromqlError('a series of the matrix has no values')
        return { metric: labelsOf(s.metric), values: s.values.map((v) => [sampleTime(v), sampleValue(v)] as [number, number]) }
      })
    })
  }

  private async held<T>(lease: Lease | undefined, ask: (lease: Lease) => Promise<T>): Promise<T> {
    if (lease) return ask(lease)
    const own = new Lease(this.budget)
    try {
      return await ask(own)
    } finally {
      own.release()
    }
  }

  private async post(path: string, params: Record<string, string>, lease: Lease): Promise<unknown> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    let text: string
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined
      try {
        res = await fetch(`${this.url}${path}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
          body: new URLSearchParams(params).toString(),
          signal,
          redirect: 'error',
        })
        text = await readCapped(res, this.maxBytes, lease)
        break
      } catch (err) {
        if (err instanceof PromqlError) throw err
        if (signal.aborted) throw new PromqlError(`Prometheus did not answer within ${this.timeoutMs} ms`)
        // fetch says only "fetch failed"; its cause says what (ECONNREFUSED, a reset, a DNS failure).
        const cause = (err as { cause?: { message?: unknown; code?: unknown } }).cause
        // A kept-alive connection the server closed as the query was sent on it: the query is asked again, once.
        if (attempt === 1 && res === undefined && (cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET')) continue
        throw new PromqlError(`Prometheus at ${this.url} could not be read: ${(err as Error).message}${typeof cause?.message === 'string' ? ` (${cause.message})` : ''}`)
      }
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new PromqlError('Prometheus answered something other than JSON')
    }
    if (!isRecord(body)) throw new PromqlError('Prometheus answered something other than an object')
    if (body.status !== 'success') {
      const error = typeof body.error === 'string' ? body.error.slice(0, 500) : 'no reason given'
      throw new PromqlError(`Prometheus refused the query: ${error}`)
    }
    return body.data
  }
}

/** The body as text, read no further than `maxBytes`, each chunk taken from `lease` as it arrives. */
async function readCapped(res: Response, maxBytes: number, lease: Lease): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (declared > maxBytes) {
    res.body?.cancel().catch(() => {})
    throw new PromqlTooLarge(`Prometheus's answer is larger than ${maxBytes} bytes`)
  }
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) throw new PromqlTooLarge(`Prometheus's answer is larger than ${maxBytes} bytes`)
      lease.take(value.byteLength)
      chunks.push(value)
    }
  } catch (err) {
    // Not awaited: a cancel can wait on a peer that has stopped sending.
    reader.cancel().catch(() => {})
    throw err
  }
  // Decoded once whole: an answer cut short leaves only its chunks, outside the JS heap, which V8 frees soonest.
  const text = Buffer.concat(chunks, size).toString('utf8')
  chunks.length = 0
  if (!res.ok && !text.startsWith('{')) throw new PromqlError(`Prometheus answered ${res.status}`)
  return text
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function vectorOf(data: unknown, type: 'vector' | 'matrix'): Array<Record<string, unknown>> {
  if (!isRecord(data) || data.resultType !== type || !Array.isArray(data.result)) throw new PromqlError(`Prometheus did not answer a ${type}`)
  return data.result.map((s) => {
    if (!isRecord(s)) throw new PromqlError(`a series of the ${type} is not an object`)
    return s
  })
}

/** The labels, checked: the parsed object itself (JSON.parse makes `__proto__` an own property like any other), not a copy. */
function labelsOf(metric: unknown): Record<string, string> {
  if (!isRecord(metric)) throw new PromqlError('a series has no labels')
  for (const k in metric) {
    if (typeof metric[k] !== 'string') throw new PromqlError(`label ${k.slice(0, 100)} is not a string`)
  }
  return metric as Record<string, string>
}

function sampleTime(v: unknown): number {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number' || !Number.isFinite(v[0])) throw new PromqlError('a sample is not [time, "value"]')
  return v[0]
}

function sampleValue(v: unknown): number {
  sampleTime(v)
  const text = (v as unknown[])[1]
  if (typeof text !== 'string') throw new PromqlError('a sample value is not a string')
  const n = Number(text)
  if (Number.isNaN(n) && text !== 'NaN') throw new PromqlError('a sample value is not a number')
  return n
}
