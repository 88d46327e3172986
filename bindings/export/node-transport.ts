import http from 'node:http'
import https from 'node:https'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { UNCONFIRMED, unconfirmed, type Transport } from './exporter.js'

const gzip = promisify(zlib.gzip)

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
  // level 1, as dd-trace: these payloads are small and compress well anyway
  gzip: (data) => gzip(data, { level: 1 }),
}
