/**
 * A PromQL client for Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`), and for
 * anything that speaks it (Thanos, Mimir, VictoriaMetrics). Whatever answers is not trusted: each
 * request has a time limit for the whole answer, the body is read up to a size cap and dropped
 * past it, and the JSON is checked before anything is read from it. Every failure is a PromqlError.
 */

export interface PromqlOptions {
  /** Base URL, e.g. http://prometheus:9090 (a path prefix is kept). */
  url: string
  /** Time for a whole answer. Default 10 s. */
  timeoutMs?: number
  /** Largest answer read. Default 32 MiB. */
  maxBytes?: number
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

const DEFAULT_PROMQL_TIMEOUT_MS = 10_000
const DEFAULT_PROMQL_MAX_BYTES = 32 * 1024 * 1024

export class PromqlClient {
  readonly url: string
  private readonly timeoutMs: number
  private readonly maxBytes: number

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
  }

  /** An instant vector at `time` (seconds since the epoch). */
  async instant(query: string, time: number): Promise<InstantSample[]> {
    const data = await this.post('/api/v1/query', { query, time: String(time) })
    return vectorOf(data, 'vector').map((s) => ({ metric: labelsOf(s.metric), value: sampleValue(s.value) }))
  }

  /** A range vector from `start` to `end` every `step` seconds. */
  async range(query: string, start: number, end: number, step: number): Promise<RangeSeries[]> {
    const data = await this.post('/api/v1/query_range', { query, start: String(start), end: String(end), step: String(step) })
    return vectorOf(data, 'matrix').map((s) => {
      if (!Array.isArray(s.values)) throw new PromqlError('a series of the matrix has no values')
      return { metric: labelsOf(s.metric), values: s.values.map((v) => [sampleTime(v), sampleValue(v)] as [number, number]) }
    })
  }

  private async post(path: string, params: Record<string, string>): Promise<unknown> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    let text: string
    try {
      const res = await fetch(`${this.url}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams(params).toString(),
        signal,
        redirect: 'error',
      })
      text = await readCapped(res, this.maxBytes)
    } catch (err) {
      if (err instanceof PromqlError) throw err
      if (signal.aborted) throw new PromqlError(`Prometheus did not answer within ${this.timeoutMs} ms`)
      throw new PromqlError(`Prometheus at ${this.url} could not be read: ${(err as Error).message}`)
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

/** The body as text, read no further than `maxBytes`. */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (declared > maxBytes) {
    await res.body?.cancel()
    throw new PromqlError(`Prometheus's answer is larger than ${maxBytes} bytes`)
  }
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw new PromqlError(`Prometheus's answer is larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  const text = Buffer.concat(chunks).toString('utf8')
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

function labelsOf(metric: unknown): Record<string, string> {
  if (!isRecord(metric)) throw new PromqlError('a series has no labels')
  const out: Record<string, string> = Object.create(null)
  for (const [k, v] of Object.entries(metric)) {
    if (typeof v !== 'string') throw new PromqlError(`label ${k.slice(0, 100)} is not a string`)
    out[k] = v
  }
  return out
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
