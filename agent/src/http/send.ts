import type http from 'node:http'

/** A whole answer written at once, never cached; `close` ends the connection after it (a body left unread). */
export function send(res: http.ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8', close = false): void {
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }
  if (close) headers.Connection = 'close'
  res.writeHead(status, headers)
  res.end(body)
}
