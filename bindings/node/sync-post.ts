/**
 * POSTs made synchronously, for the moments a process ends without its event loop (the `'exit'`
 * event, a signal about to end it): a worker thread makes the requests, in parallel, while the
 * calling thread waits on `Atomics.wait` until they all settle or the latest deadline passes.
 */
import { Worker } from 'node:worker_threads'

export interface SyncRequest {
  url: string
  headers: Record<string, string>
  body: Uint8Array
  /** When the request must have settled, in ms since the epoch: no attempt starts or waits past it. */
  until: number
}

/** What became of a request besides an HTTP status: each a negative number, so that it never reads as one. */
export const Outcome = {
  /** Not settled by its deadline, nothing sent. */
  Pending: 0,
  /** Refused or reset each attempt: the Agent cannot have taken it. */
  Unreachable: -1,
  /** Sent, then no answer by the deadline: the Agent may have it. */
  Unconfirmed: -2,
} as const

// Plain JavaScript, run by `eval` in the worker so that no file has to ship beside each bundle.
// Retries, as the exporter does, only where the Agent cannot have taken the body: refused, reset,
// or 408/429/5xx; never past the deadline. Slot 0 of `state` counts settled requests, slot 1 + i
// holds request i's status or a negative outcome.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const http = require('node:http')
const https = require('node:https')
parentPort.on('message', ({ requests, state }) => {
  const settle = (i, outcome) => {
    Atomics.store(state, 1 + i, outcome)
    Atomics.add(state, 0, 1)
    Atomics.notify(state, 0)
  }
  const attempt = (r, i, n) => {
    const left = r.until - Date.now()
    if (left <= 0) return settle(i, ${Outcome.Pending})
    const url = new URL(r.url)
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      agent: false,
      headers: { ...r.headers, 'Content-Length': String(r.body.byteLength) },
    })
    let sent = false
    let done = false
    const end = (outcome, retry) => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.destroy()
      const wait = 250 * 2 ** n
      if (retry && n < 2 && r.until - Date.now() > wait) setTimeout(() => attempt(r, i, n + 1), wait)
      else settle(i, outcome)
    }
    const timer = setTimeout(() => end(sent ? ${Outcome.Unconfirmed} : ${Outcome.Pending}, false), left)
    req.on('finish', () => (sent = true))
    req.on('error', (err) => {
      const taken = sent && err.syscall === undefined && !req.reusedSocket
      end(taken ? ${Outcome.Unconfirmed} : ${Outcome.Unreachable}, !taken)
    })
    req.on('response', (res) => {
      const status = res.statusCode || 0
      end(status, status >= 500 || status === 408 || status === 429)
    })
    req.end(r.body)
  }
  requests.forEach((r, i) => attempt(r, i, 0))
})
`

/** A worker that makes POSTs for a waiting thread. */
export interface Poster {
  /** Makes the requests and waits for them, at most until the latest `until`; the outcomes in order. */
  post(requests: readonly SyncRequest[]): number[]
  /** Ends the worker (it never keeps the process alive anyway). */
  close(): void
}

export function startPoster(): Poster {
  // No execArgv and an empty environment: neither a loader (`--import tsx`) nor NODE_OPTIONS's
  // preloads (`-r pathwise/register`) run in the worker, so it starts fast and records nothing.
  const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], env: {}, name: 'pathwise-exit' })
  worker.unref()
  // a worker that fails to start settles nothing: the wait ends at the deadline
  worker.on('error', () => {})
  return {
    post(requests) {
      const state = new Int32Array(new SharedArrayBuffer(4 * (1 + requests.length)))
      worker.postMessage({ requests: requests.map(({ url, headers, body, until }) => ({ url, headers, body, until })), state })
      const until = Math.max(...requests.map((r) => r.until))
      for (let settled = 0; (settled = Atomics.load(state, 0)) < requests.length; ) {
        const left = until - Date.now()
        if (left <= 0) break
        Atomics.wait(state, 0, settled, left)
      }
      return Array.from(state.subarray(1))
    },
    close: () => void worker.terminate(),
  }
}
