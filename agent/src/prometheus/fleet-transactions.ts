import { BUCKET_MS, bucketStart } from '../model/store.js'
import { emptySketch, quantilesOf, type Sketch } from '../model/sketch.js'
import type { PairView, TransactionsView } from '../views/transactions.js'
import { LATENCY } from './histogram.js'
import { fromLabel } from './labels.js'
import { Lease, type PromqlClient } from './promql.js'
import { instantAsker, rangeAsker, readFamily, type FamilyQuery, type RangeHistogram } from './range-histograms.js'

/**
 * `/api/transactions` in the fleet view: the same answer as an agent's (views/transactions.ts), from
 * every agent's `pathwise_transaction_latency_seconds` histograms and transaction counters in
 * Prometheus (prometheus/transaction-metrics.ts). Like an agent, it reads the buckets from the one
 * holding the range's start to the one still going: their latencies over the range, and per bucket.
 */

const LATENCIES: FamilyQuery = {
  name: 'pathwise_transaction_latency_seconds',
  layout: LATENCY,
  keyOf: (labels) => JSON.stringify([fromLabel(labels.from_checkpoint), fromLabel(labels.to_checkpoint)]),
}

function sketchOf(h: RangeHistogram): Sketch {
  const s = emptySketch()
  for (const [bucket, n] of h.buckets) if (n > 0 && Number.isFinite(n)) s.accept(LATENCY.middle(bucket), n)
  return s
}

export async function readTransactions(client: PromqlClient, nowMs: number, rangeMs: number): Promise<TransactionsView> {
  const current = bucketStart(nowMs)
  const from = current - Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS
  const t = nowMs / 1000
  const lease = new Lease(client.budget)
  try {
    const [whole, ended, filling, totals] = await Promise.all([
      readFamily(instantAsker(client, t, lease), LATENCIES, nowMs - from),
      readFamily(rangeAsker(client, (from + BUCKET_MS) / 1000, current / 1000, BUCKET_MS / 1000, lease), LATENCIES, BUCKET_MS),
      nowMs > current ? readFamily(instantAsker(client, t, lease), LATENCIES, nowMs - current) : null,
      client.instant(
        'sum by (__name__, result) ({__name__=~"pathwise_transaction_(records_total|ids_evicted_total|latencies_dropped_total|ids|ids_limit)"})',
        t,
        lease,
      ),
    ])
    const perBucket = new Map<string, PairView['buckets']>()
    const steps = [...ended].map(([time, sets]): [number, Map<string, RangeHistogram>] => [time * 1000 - BUCKET_MS, sets])
    for (const [, sets] of filling ?? []) steps.push([current, sets])
    for (const [start, sets] of steps.sort((a, b) => a[0] - b[0])) {
      for (const [key, h] of sets) {
        if (!(h.count > 0)) continue
        let list = perBucket.get(key)
        if (!list) perBucket.set(key, (list = []))
        list.push({ start, count: h.count, latency: quantilesOf(sketchOf(h)) })
      }
    }
    const pairs: PairView[] = []
    for (const [key, h] of whole.get(t) ?? []) {
      if (!(h.count > 0)) continue
      const [fromName, to] = JSON.parse(key) as [string, string]
      pairs.push({ from: fromName, to, count: h.count, latency: quantilesOf(sketchOf(h)), buckets: perBucket.get(key) ?? [] })
    }
    pairs.sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to))
    const value = (name: string, result?: string): number => {
      const sample = totals.find((s) => s.metric.__name__ === `pathwise_transaction_${name}` && s.metric.result === result)
      return sample && Number.isFinite(sample.value) ? sample.value : 0
    }
    return {
      now: nowMs,
      rangeSeconds: rangeMs / 1000,
      pairs,
      ids: { tracked: value('ids'), max: value('ids_limit') },
      counters: {
        records: value('records_total', 'read'),
        malformed: value('records_total', 'malformed'),
        unknownCheckpoint: value('records_total', 'unknown_checkpoint'),
        duplicates: value('records_total', 'duplicate'),
        outOfWindow: value('records_total', 'out_of_window'),
        evictedIds: value('ids_evicted_total'),
        droppedLatencies: value('latencies_dropped_total'),
        droppedNames: value('records_total', 'dropped_name'),
      },
    }
  } finally {
    lease.release()
  }
}
