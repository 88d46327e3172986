import type http from 'node:http'
import { VERSION } from 'pathwise'
import type { Metrics } from '../prometheus/metrics.js'
import type { PrometheusSource } from '../prometheus/fleet.js'
import { PromqlBusy, PromqlError } from '../prometheus/promql.js'
import type { TransactionMetrics } from '../prometheus/transaction-metrics.js'
import { handleApi, type ApiContext } from '../views/api.js'
import { transactionsAnswer, type TransactionTracker } from '../views/transactions.js'
import type { RequestGuard } from './guard.js'
import type { IntakeEndpoint } from './intake-endpoint.js'
import { sendMetrics } from './metrics-endpoint.js'
import { staticFile } from './static.js'
import { send } from './send.js'

/**
 * Every request, once the guard lets it through, by path: what tracers post (the intake endpoint),
 * what they read (`/info`), `/metrics`, the JSON API (from memory, or from Prometheus for the fleet
 * view) and the page's files. Anything else is a 404.
 */

export interface Routes {
  guard: RequestGuard
  intake: IntakeEndpoint
  /** What /api/* answers from: this agent's store and status. */
  api: ApiContext
  /** With `--prometheus`: /api/* answers from the fleet instead. */
  fleet: PrometheusSource | null
  transactions: TransactionTracker
  metrics: Metrics
  transactionMetrics: TransactionMetrics
  /** The port listened on, for /info. */
  port: () => number
}

const TRACE_PATHS = new Set(['/v0.3/traces', '/v0.4/traces', '/v0.5/traces', '/v0.7/traces'])

export function router(routes: Routes): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  const { guard, intake, fleet } = routes
  return async function handle(req, res) {
    const refusal = guard.check(req)
    if (refusal) return send(res, 403, `${refusal}\n`, 'text/plain; charset=utf-8', !req.complete)
    const url = new URL(req.url ?? '/', 'http://agent')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const write = method === 'POST' || method === 'PUT'
    if (path === '/v0.1/pipeline_stats') {
      if (write) return intake.pipelineStats(req, res)
      return send(res, 405, 'use POST\n')
    }
    if (write && TRACE_PATHS.has(path)) return intake.passThrough(req, res, 200, '{"rate_by_service":{}}', 'application/json')
    if (write && (path === '/v0.6/stats' || path.startsWith('/telemetry/proxy/'))) return intake.passThrough(req, res, 202, '{}', 'application/json')
    if (method !== 'GET' && method !== 'HEAD') {
      req.resume()
      // /v0.7/config included: a 404 there is how an Agent says remote configuration is off, which tracers accept quietly.
      return send(res, 404, 'not found\n')
    }
    if (path === '/info') return send(res, 200, JSON.stringify(info(routes.port(), intake.forwarding)), 'application/json')
    if (path === '/metrics') return sendMetrics(req, res, routes.metrics, routes.transactionMetrics, routes.api.status)
    if (path.startsWith('/api/')) {
      let view = routes.api
      try {
        if (path === '/api/transactions') {
          const body = fleet ? await fleet.transactions(url) : transactionsAnswer(routes.transactions, url).body
          return send(res, 200, JSON.stringify(body), 'application/json')
        }
        if (fleet) view = await fleet.context(url)
      } catch (err) {
        if (!(err instanceof PromqlError) || !fleet) throw err
        return prometheusFailed(res, err, fleet.client.url)
      }
      const answer = handleApi(view, url)
      if (answer) return send(res, answer.status, answer.json ?? JSON.stringify(answer.body), 'application/json')
      return send(res, 404, JSON.stringify({ error: `no route ${path}` }), 'application/json')
    }
    const file = await staticFile(path)
    if (file) return send(res, 200, file.body, file.type)
    send(res, 404, 'not found\n')
  }
}

/**
 * The fleet view could not read Prometheus: 502 with the reason and the Prometheus it reads (the page
 * and `top` name both), or 503 when the view's limits are reached (too many views or answers at once).
 */
function prometheusFailed(res: http.ServerResponse, err: PromqlError, prometheus: string): void {
  if (err instanceof PromqlBusy) res.setHeader('Retry-After', '1')
  send(res, err instanceof PromqlBusy ? 503 : 502, JSON.stringify({ error: err.message, prometheus }), 'application/json')
}

/**
 * What tracers read from `/info`: the endpoints they may use. The version is the Agent API this
 * agent speaks (7.34 brought `/v0.1/pipeline_stats`); the `/v0.6/stats` endpoint is not listed,
 * so that tracers do not compute client-side stats and drop traces for an agent that keeps none.
 * `pathwise_sparse_sketches` tells pathwise that it may send sketches in their sparse form.
 */
function info(port: number, forwarding: boolean): object {
  return {
    version: '7.34.0-pathwise',
    pathwise_version: VERSION,
    // it reads DDSketches' binCounts map; a Datadog Agent it forwards to might not
    pathwise_sparse_sketches: !forwarding,
    endpoints: ['/v0.4/traces', '/v0.5/traces', '/v0.7/traces', '/v0.1/pipeline_stats', '/telemetry/proxy/', '/info'],
    feature_flags: [],
    client_drop_p0s: false,
    span_meta_structs: false,
    long_running_spans: false,
    config: { default_env: 'none', receiver_port: port, statsd_port: 8125 },
  }
}
