/**
 * A known pipeline, as the services in it would report it:
 *
 *   orders-api → kafka:orders ─(group billing)→ billing → sqs:invoices → mailer
 *                             └(group analytics)→ analytics → kinesis:clicks → aggregator
 *
 * Latencies are drawn from a seeded generator, so tests can compute the exact quantiles of
 * what was sent and compare them with the agent's.
 */
import type { BucketSpec, PointSpec } from './agent-fixtures.js'

export const H = {
  ordersOut: 0x9a6ed7bfb001208en,
  billingIn: 0x1111111111111111n,
  billingOut: 0x2222222222222222n,
  mailerIn: 0x3333333333333333n,
  analyticsIn: 0x4444444444444444n,
  analyticsOut: 0x5555555555555555n,
  aggregatorIn: 0x6666666666666666n,
}

export const TAGS = {
  ordersOut: ['direction:out', 'topic:orders', 'type:kafka'],
  billingIn: ['direction:in', 'group:billing', 'topic:orders', 'type:kafka'],
  billingOut: ['direction:out', 'topic:invoices', 'type:sqs'],
  mailerIn: ['direction:in', 'topic:invoices', 'type:sqs'],
  analyticsIn: ['direction:in', 'group:analytics', 'topic:orders', 'type:kafka'],
  analyticsOut: ['direction:out', 'topic:clicks', 'type:kinesis'],
  aggregatorIn: ['direction:in', 'topic:clicks', 'type:kinesis'],
}

/** A seeded generator of latencies in [min, max) seconds. */
export function latencies(seed: number, n: number, min: number, max: number): number[] {
  let x = seed >>> 0 || 1
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    out.push(min + (x / 2 ** 32) * (max - min))
  }
  return out
}

/** The value at quantile q as DDSketch defines it: the element of rank floor(q·(n−1)) of the sorted values. */
export function exactQuantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(q * (sorted.length - 1))]
}

export interface ServicePayload {
  service: string
  buckets: BucketSpec[]
  /** Default 'test'. */
  env?: string
}

/** What each service reports for one 10 s bucket, `n` messages through every hop (the orders edge gets `n` more in `extra`). */
export function pipelineBucket(startMs: number, n: number, seed = 1): { payloads: ServicePayload[]; values: Record<keyof typeof H, { edge: number[]; pathway: number[] }> } {
  const v = (k: number, lo: number, hi: number): number[] => latencies(seed * 100 + k, n, lo, hi)
  const values = {
    ordersOut: { edge: v(1, 0.0005, 0.002), pathway: v(1, 0.0005, 0.002) },
    billingIn: { edge: v(2, 0.01, 0.05), pathway: v(3, 0.02, 0.08) },
    billingOut: { edge: v(4, 0.001, 0.004), pathway: v(5, 0.03, 0.09) },
    mailerIn: { edge: v(6, 0.05, 0.2), pathway: v(7, 0.1, 0.4) },
    analyticsIn: { edge: v(8, 0.02, 0.1), pathway: v(9, 0.03, 0.12) },
    analyticsOut: { edge: v(10, 0.001, 0.003), pathway: v(11, 0.04, 0.15) },
    aggregatorIn: { edge: v(12, 0.2, 0.6), pathway: v(12, 0.2, 0.6) },
  }
  const p = (k: keyof typeof H, parent: bigint): PointSpec => ({ tags: TAGS[k], hash: H[k], parent, edge: values[k].edge, pathway: values[k].pathway })
  const payloads: ServicePayload[] = [
    { service: 'orders-api', buckets: [{ startMs, points: [p('ordersOut', 0n)] }] },
    { service: 'billing', buckets: [{ startMs, points: [p('billingIn', H.ordersOut), p('billingOut', H.billingIn)] }] },
    { service: 'mailer', buckets: [{ startMs, points: [p('mailerIn', H.billingOut)] }] },
    { service: 'analytics', buckets: [{ startMs, points: [p('analyticsIn', H.ordersOut), p('analyticsOut', H.analyticsIn)] }] },
    // Kinesis carries no context: the consumer's point starts a new segment.
    { service: 'aggregator', buckets: [{ startMs, points: [p('aggregatorIn', 0n)] }] },
  ]
  return { payloads, values }
}
