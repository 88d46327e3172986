import http from 'node:http'
import https from 'node:https'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import type { Transport } from './exporter.js'

const gzip = promisify(zlib.gzip)

// Own agents, so that pathwise's kept-alive sockets never mix with the application's.
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 1 })

/** The Node transport: `node:http(s)` and `node:zlib`. Nothing it opens keeps the process alive. */
export const nodeTransport: Transport = {
  post(url, headers, body, timeoutMs) {
    return new Promise<number>((resolve, reject) => {
      const target = new URL(url)
      const secure = target.protocol === 'https:'
      const req = (secure ? https : http).request(target, {
        method: 'POST',
        agent: secure ? httpsAgent : httpAgent,
        headers: { ...headers, 'Content-Length': String(body.byteLength) },
      })
      // a deadline for the whole exchange: a socket idle timeout would let a trickling Agent hold on
      const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
      timer.unref()
      // also on a kept-alive socket reused from the pool, which the agent refs again
      req.on('socket', (socket) => socket.unref())
      req.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0)
        // drain the body so the socket can go back to the pool; the deadline still guards it
        res.resume()
        res.on('close', () => clearTimeout(timer))
        // the status is already known: a body cut short by the deadline or the Agent changes nothing
        res.on('error', () => {})
      })
      req.end(body)
    })
  },
  // level 1, as dd-trace: these payloads are small and compress well anyway
  gzip: (data) => gzip(data, { level: 1 }),
}
