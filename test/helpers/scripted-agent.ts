import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { decode } from '@msgpack/msgpack'
import type { DecodedPayload } from './agent-server.js'

/**
 * An Agent whose answers are scripted request by request, for the exporter's retry rules: a real
 * HTTP server on 127.0.0.1 that decodes each pipeline_stats body (gzip of msgpack) it reads in full.
 * `GET /info` is answered at once as a Datadog Agent answers it, outside the script and the count.
 */

/**
 * What the Agent does with one request: answer this status (200 keeps the payload), or after
 * `afterMs`; 'reset': reset the connection before reading the body; 'hang-up': read the body, then
 * close the connection without an answer; 'hang': read the body and never answer.
 */
export type Reply = number | { status: number; afterMs: number } | 'reset' | 'hang-up' | 'hang'

export interface ScriptedAgent {
  url: string
  port: number
  /** Requests whose headers arrived, bodies read or not (`GET /info` aside). */
  readonly requests: number
  /** The Service of every body read in full, whatever the answer: what the Agent could have counted. */
  received: string[]
  /** The payloads answered 2xx, in order. */
  accepted: DecodedPayload[]
  /** Resolves when `pred` holds, checked now and after each request and answer; rejects after `timeoutMs`. */
  waitFor(pred: () => boolean, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

/** `script[i]` is the reply to request i; past its end, `then`. */
export async function startScriptedAgent(options: { script?: Reply[]; then?: Reply; port?: number } = {}): Promise<ScriptedAgent> {
  const script = options.script ?? []
  const then = options.then ?? 200
  let requests = 0
  const received: string[] = []
  const accepted: DecodedPayload[] = []
  const waiters = new Set<() => void>()
  const pending = new Set<NodeJS.Timeout>()
  const changed = (): void => {
    for (const waiter of waiters) waiter()
  }

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/info') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ version: '7.52.0', endpoints: ['/v0.1/pipeline_stats'] }))
      return
    }
    const reply = script[requests] ?? then
    requests++
    changed()
    if (reply === 'reset') {
      req.socket.resetAndDestroy()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const payload = decode(gunzipSync(Buffer.concat(chunks)), { useBigInt64: true }) as DecodedPayload
      received.push(payload.Service)
      changed()
      if (reply === 'hang') return
      if (reply === 'hang-up') {
        req.socket.destroy()
        return
      }
      const { status, afterMs } = typeof reply === 'number' ? { status: reply, afterMs: 0 } : reply
      const answer = (): void => {
        if (status >= 200 && status < 300) accepted.push(payload)
        res.writeHead(status).end()
        changed()
      }
      if (afterMs === 0) return answer()
      const timer = setTimeout(() => {
        pending.delete(timer)
        answer()
      }, afterMs)
      pending.add(timer)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests
    },
    received,
    accepted,
    waitFor(pred, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pred()) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`scripted agent: condition not met within ${timeoutMs} ms (${requests} requests, received ${received.join()})`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close() {
      for (const timer of pending) clearTimeout(timer)
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/** A port nothing listens on (one just released): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
