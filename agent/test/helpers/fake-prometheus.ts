/** A stand-in for Prometheus's query API, answering whatever a test says: for what a real one cannot be made to do on demand. */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakePrometheus {
  url: string
  /** What a query is answered (its path and form), as JSON text written in 64 KiB chunks without a Content-Length. */
  answer: (path: string, form: URLSearchParams) => string
  /** Queries asked so far. */
  queries: number
  close(): Promise<void>
}

export async function startFakePrometheus(answer: FakePrometheus['answer']): Promise<FakePrometheus> {
  const fake: FakePrometheus = { url: '', answer, queries: 0, close: async () => {} }
  const server = http.createServer(async (req, res) => {
    let form = ''
    for await (const chunk of req) form += chunk
    fake.queries++
    const body = Buffer.from(fake.answer(req.url ?? '/', new URLSearchParams(form)))
    res.writeHead(200, { 'Content-Type': 'application/json' })
    let at = 0
    const pump = (): void => {
      while (at < body.length && !res.destroyed) {
        const ok = res.write(body.subarray(at, (at += 65_536)))
        if (!ok) return void res.once('drain', pump)
      }
      if (!res.destroyed) res.end()
    }
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  fake.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return fake
}

/**
 * A successful answer of `n` series of a stats point series' labels, as a vector (`/api/v1/query`)
 * or a matrix, their pathway hashes spread as real ones are. A query's `pathway_hash=~"P.*"` (the
 * fleet view's shards) is honoured, as Prometheus would: only the series whose hash starts with P.
 */
export function seriesAnswer(path: string, n: number, query = ''): string {
  const matrix = path.startsWith('/api/v1/query_range')
  const prefix = /pathway_hash=~"([0-9a-f]*)\.\*"/.exec(query)?.[1] ?? ''
  const t = Math.floor(Date.now() / 1000)
  const parts: string[] = []
  for (let i = 0; i < n; i++) {
    const hash = ((BigInt(i + 1) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn).toString(16).padStart(16, '0')
    if (!hash.startsWith(prefix)) continue
    const metric = `{"service":"svc-${i % 500}","env":"prod","pathway_hash":"${hash}","parent_hash":"00000000000000ff","direction":"in","type":"kafka","topic":"topic-${i % 50}","group":"group-${i % 50}","instance":"host-${i % 20}:8126","job":"pathwise"}`
    parts.push(matrix ? `{"metric":${metric},"values":[[${t},"1"]]}` : `{"metric":${metric},"value":[${t},"1"]}`)
  }
  return `{"status":"success","data":{"resultType":"${matrix ? 'matrix' : 'vector'}","result":[${parts.join(',')}]}}`
}
