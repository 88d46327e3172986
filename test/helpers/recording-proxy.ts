import http from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * An HTTP proxy in front of an agent, for tests: passes every request on as it came and answers
 * with the agent's answer, keeping each `pipeline_stats` body (as sent: gzip) with that answer's status.
 */

export interface Forwarded {
  path: string
  status: number
  body: Buffer
}

export interface RecordingProxy {
  url: string
  forwarded: Forwarded[]
  close(): Promise<void>
}

export async function startRecordingProxy(agentUrl: string): Promise<RecordingProxy> {
  const forwarded: Forwarded[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v
      const answer = await fetch(agentUrl + req.url, { method: req.method, headers, body: req.method === 'POST' ? body : undefined })
      const text = await answer.text()
      if (req.url === '/v0.1/pipeline_stats') forwarded.push({ path: req.url, status: answer.status, body })
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' })
      res.end(text)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forwarded,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
