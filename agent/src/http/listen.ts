import http from 'node:http'
import { send } from './send.js'

/**
 * The agent's HTTP server: time limits on headers and bodies, a cap on open connections, and a
 * handler that fails answered 500 (or its connection closed) and logged, never the process ended.
 */

export interface ListenOptions {
  host: string
  port: number
  /** The intake's body time limit, which headers get too. */
  bodyTimeoutMs: number
  /** Connections open at once; past them new ones are closed at once. Default 512. */
  maxConnections?: number
  log: (line: string) => void
}

const DEFAULT_MAX_CONNECTIONS = 512

/** A server listening, each request given to `handle`; rejects when it cannot listen (the port taken). */
export async function listen(handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>, options: ListenOptions): Promise<http.Server> {
  const { log } = options
  // Headers get the body's time limit too; Node checks it every second rather than every 30.
  const timeouts = { headersTimeout: options.bodyTimeoutMs, requestTimeout: 2 * options.bodyTimeoutMs, connectionsCheckingInterval: 1000 }
  const server = http.createServer(timeouts, (req, res) => {
    handle(req, res).catch((err: Error) => {
      log(`error answering ${req.method} ${req.url}: ${err.message}`)
      if (!res.headersSent) send(res, 500, 'internal error\n', 'text/plain; charset=utf-8', true)
      else res.destroy()
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.on('error', (err) => log(`server error: ${err.message}`))
  return server
}
