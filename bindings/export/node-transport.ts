import http from 'node:http'
import https from 'node:https'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { MAX_JSON_BYTES, UNCONFIRMED, unconfirmed, type Transport } from './exporter.js'

const gzip = promisify(zlib.gzip)
const gunzip = promisify(zlib.gunzip)
const MAX_GZIP_CHUNK = 1024 * 1024

// Own agents, so that pathwise's kept-alive sockets never mix with the application's. Node unrefs
// idle kept-alive sockets itself. No socket limit: each exporter sends one payload at a time, and
// a request waiting for another instance's socket would spend its deadline to connect and send.
const httpAgent = new http.Agent({ keepAlive: true })
const httpsAgent = new https.Agent({ keepAlive: true })

/**
 * The Node transport: `node:http(s)` and `node:zlib`. Nothing it opens keeps the process alive
 * (the exporter holds it where a caller asks). Once the whole body has been handed to the network,
 * a failure rejects as `unconfirmed` unless the Agent's side cannot have read it: a reset (the
 * kernel aborts a connection closed with unread data) or a reused kept-alive socket that the
 * Agent had closed (the race Node documents for `request.reusedSocket`).
 */
export const nodeTransport: Transport = {
  post(url, headers, body, { sendMs, answerMs }) {
    return new Promise<number>((resolve, reject) => {
      const target = new URL(url)
      const secure = target.protocol === 'https:'
      const req = (secure ? https : http).request(target, {
        method: 'POST',
        agent: secure ? httpsAgent : httpAgent,
        headers: { ...headers, 'Content-Length': String(body.byteLength) },
      })
      // deadlines for the whole exchange: a socket idle timeout would let a trickling Agent hold on
      let deadline = setTimeout(() => req.destroy(new Error(`could not connect and send within ${sendMs} ms`)), sendMs)
      deadline.unref()
      let sent = false
      let answered = false
      // emitted once the last byte of the body is written to the socket
      req.on('finish', () => {
        sent = true
        if (answered) return
        clearTimeout(deadline)
        deadline = setTimeout(() => req.destroy(unconfirmed(`sent, no answer within ${answerMs} ms`)), answerMs)
        deadline.unref()
      })
      // also on a kept-alive socket reused from the pool, which the agent refs again
      req.on('socket', (socket) => socket.unref())
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(deadline)
        const reset = err.syscall !== undefined || req.reusedSocket
        reject(sent && !reset && err.code !== UNCONFIRMED ? unconfirmed(`sent, then ${err.message}`, err) : err)
      })
      req.on('response', (res) => {
        answered = true
        resolve(res.statusCode ?? 0)
        // drain the body so the socket can go back to the pool; the deadline still guards it
        res.resume()
        res.on('close', () => clearTimeout(deadline))
        // the status is already known: a body cut short by the deadline or the Agent changes nothing
        res.on('error', () => {})
      })
      req.end(body)
    })
  },
  getJson(url, { sendMs, answerMs }) {
    return new Promise<unknown>((resolve, reject) => {
      const target = new URL(url)
      const secure = target.protocol === 'https:'
      const req = (secure ? https : http).get(target, { agent: secure ? httpsAgent : httpAgent }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= MAX_JSON_BYTES) chunks.push(chunk)
          else res.destroy()
        })
        res.on('end', () => {
          clearTimeout(deadline)
          if (res.statusCode !== 200) return resolve(undefined)
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            resolve(undefined)
          }
        })
        // cut short (too large, or the deadline): no answer to use
        res.on('close', () => {
          clearTimeout(deadline)
          resolve(undefined)
        })
      })
      const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${sendMs + answerMs} ms`)), sendMs + answerMs)
      deadline.unref()
      req.on('socket', (socket) => socket.unref())
      req.on('error', (err) => {
        clearTimeout(deadline)
        reject(err)
      })
    })
  },
  // Level 1, as dd-trace: these payloads compress well anyway. On the thread pool, off the event
  // loop; each output chunk comes back to the event loop, so a chunk of a quarter of the input
  // (what it compresses to, about) makes it a few round trips rather than one per 16 KiB.
  gzip: (data) => gzip(data, { level: 1, chunkSize: Math.min(MAX_GZIP_CHUNK, Math.max(zlib.constants.Z_DEFAULT_CHUNK, data.byteLength >>> 2)) }),
  gunzip: (data) => gunzip(data),
}
