import http from 'node:http'
import https from 'node:https'
import type { IncomingHttpHeaders } from 'node:http'

/**
 * `--forward URL`: every payload taken in is also sent on to another Agent, body and path
 * unchanged, with the headers that describe the body (content type and encoding, the Datadog-*
 * headers tracers set). Fire and forget: the tracer's answer never waits for it. At most
 * `maxInFlight` requests at once; past that a payload is not forwarded and is counted as dropped.
 */

export interface ForwardStats {
  url: string
  forwarded: number
  failed: number
  dropped: number
}

const KEPT_HEADERS = /^(content-type|content-encoding|datadog-|x-datadog-)/i

export class Forwarder {
  readonly stats: ForwardStats
  private readonly base: URL
  private inFlight = 0
  private readonly pending = new Set<http.ClientRequest>()

  constructor(
    url: string,
    private readonly maxInFlight = 32,
    private readonly timeoutMs = 10_000,
  ) {
    this.base = new URL(url)
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new Error(`--forward needs an http(s) URL, not ${url}`)
    this.stats = { url: this.base.origin, forwarded: 0, failed: 0, dropped: 0 }
  }

  send(method: string, path: string, headers: IncomingHttpHeaders, body: Uint8Array): void {
    if (this.inFlight >= this.maxInFlight) {
      this.stats.dropped++
      return
    }
    const out: Record<string, string> = { 'content-length': String(body.length) }
    for (const [name, value] of Object.entries(headers)) {
      if (KEPT_HEADERS.test(name) && typeof value === 'string') out[name] = value
    }
    const target = new URL(path, this.base)
    const lib = target.protocol === 'https:' ? https : http
    this.inFlight++
    const req = lib.request(target, { method, headers: out, timeout: this.timeoutMs })
    this.pending.add(req)
    let done = false
    const finish = (ok: boolean): void => {
      if (done) return
      done = true
      this.inFlight--
      this.pending.delete(req)
      if (ok) this.stats.forwarded++
      else this.stats.failed++
    }
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => finish((res.statusCode ?? 500) < 400))
      res.on('error', () => finish(false))
    })
    req.on('timeout', () => req.destroy(new Error('forward timed out')))
    req.on('error', () => finish(false))
    req.end(body)
  }

  /** Aborts whatever is still in flight. */
  close(): void {
    for (const req of this.pending) req.destroy()
  }
}
