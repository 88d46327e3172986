import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { decode } from '@msgpack/msgpack'

/**
 * A stand-in for the Datadog Agent, for tests: a real HTTP server on 127.0.0.1 that takes
 * `POST /v0.1/pipeline_stats` (gzip of msgpack) and answers `GET /info`.
 */

/** A StatsPayload as decoded with `useBigInt64`: uint64 fields come back as exact BigInts. */
export interface DecodedPayload {
  Env: string
  Service: string
  Stats: DecodedBucket[]
  TracerVersion: string
  Lang: string
  Version: string
  Hostname?: string
  Tags?: string[]
}

export interface DecodedBucket {
  Start: bigint
  Duration: bigint
  Stats: DecodedPoint[]
  Backlogs: DecodedBacklog[]
}

export interface DecodedPoint {
  EdgeTags: string[]
  Hash: bigint
  ParentHash: bigint
  PathwayLatency: Uint8Array
  EdgeLatency: Uint8Array
  PayloadSize: Uint8Array
  TimestampType: string
}

export interface DecodedBacklog {
  Tags: string[]
  /** A number when it fits 32 bits, else a BigInt. */
  Value: number | bigint
}

export interface AgentRequest {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  /** The body as received. */
  body: Uint8Array
  /** For pipeline_stats: the body gunzipped, i.e. the msgpack bytes. */
  msgpack?: Uint8Array
}

/**
 * ok: 200 and the payload is kept; 404: an Agent older than 7.34; 500: a failing Agent (payload not kept);
 * hang: reads the request and never answers.
 */
export type AgentMode = 'ok' | '404' | '500' | 'hang'

export interface AgentOptions {
  mode?: AgentMode
  /** Listen on this port (to bring an Agent back where a closed one was); default any free port. */
  port?: number
}

export interface TestAgent {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string
  port: number
  /** Payloads the Agent accepted (mode ok), in arrival order. */
  payloads: DecodedPayload[]
  /** Every request, whatever the mode, but `GET /info` (what tracers ask before they send: counted apart). */
  requests: AgentRequest[]
  /** `GET /info` requests answered. */
  readonly infoRequests: number
  /** Resolves when `pred` holds, checked now and after each request; rejects after `timeoutMs` (default 5000). */
  waitFor(pred: (payloads: DecodedPayload[], requests: AgentRequest[]) => boolean, timeoutMs?: number): Promise<void>
  setMode(mode: AgentMode): void
  /** Closes the server and every connection, hanging ones included. */
  close(): Promise<void>
}

export async function startAgent(opts: AgentOptions = {}): Promise<TestAgent> {
  let mode: AgentMode = opts.mode ?? 'ok'
  const payloads: DecodedPayload[] = []
  const requests: AgentRequest[] = []
  let infoRequests = 0
  const waiters = new Set<() => void>()

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = new Uint8Array(Buffer.concat(chunks))
      const path = req.url ?? ''
      const record: AgentRequest = { method: req.method ?? '', path, headers: req.headers, body }
      if (path === '/info' && req.method === 'GET') {
        infoRequests++
        reply(res, 200, JSON.stringify(infoFor(mode)), 'application/json')
        return
      }
      requests.push(record)
      if (path === '/v0.1/pipeline_stats' && req.method === 'POST') {
        handleStats(record, res)
      } else {
        reply(res, 404, '404 page not found\n')
      }
      for (const waiter of waiters) waiter()
    })
  })

  function handleStats(record: AgentRequest, res: http.ServerResponse): void {
    if (mode === 'hang') return
    if (mode === '404') return reply(res, 404, '404 page not found\n')
    if (mode === '500') return reply(res, 500, 'internal error\n')
    let payload: DecodedPayload
    try {
      record.msgpack = new Uint8Array(gunzipSync(record.body))
      payload = decode(record.msgpack, { useBigInt64: true }) as DecodedPayload
    } catch (err) {
      return reply(res, 400, `bad payload: ${(err as Error).message}\n`)
    }
    payloads.push(payload)
    reply(res, 200, 'OK')
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    payloads,
    requests,
    get infoRequests() {
      return infoRequests
    },
    setMode(next) {
      mode = next
    },
    waitFor(pred, timeoutMs = 5000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pred(payloads, requests)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`agent: condition not met within ${timeoutMs} ms (${requests.length} requests, ${payloads.length} payloads)`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

function reply(res: http.ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'Content-Type': type })
  res.end(body)
}

/** What `/info` tells: an Agent older than 7.34 (mode 404) lists no pipeline_stats endpoint. */
function infoFor(mode: AgentMode): object {
  const old = mode === '404'
  return {
    version: old ? '7.33.1' : '7.52.0',
    endpoints: ['/v0.4/traces', '/v0.5/traces', '/v0.6/stats', '/info', ...(old ? [] : ['/v0.1/pipeline_stats'])],
    feature_flags: [],
    client_drop_p0s: true,
    config: { default_env: 'none', receiver_port: 8126 },
  }
}

// test/helpers/sketches.ts already decodes sketches with @datadog/sketches-js: one decoder for all tests
export { decodeSketch, type DecodedSketch } from './sketches.js'
