import type http from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { Metrics } from '../prometheus/metrics.js'
import type { TransactionMetrics } from '../prometheus/transaction-metrics.js'
import type { Status } from '../views/api.js'

/** `GET /metrics` streamed, gzipped when asked (Prometheus asks): its histograms' text shrinks about 20-fold (README "Many hosts"). */
export async function sendMetrics(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  metrics: Metrics,
  transactionMetrics: TransactionMetrics,
  status: () => Status,
): Promise<void> {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding']))
  res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store', ...(gzip && { 'Content-Encoding': 'gzip' }) })
  async function* text(): AsyncGenerator<string> {
    yield* metrics.render(status())
    yield await transactionMetrics.render()
  }
  await pipeline([Readable.from(text()), ...(gzip ? [createGzip({ level: 1 })] : []), res])
}
