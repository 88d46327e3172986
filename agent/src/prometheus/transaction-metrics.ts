import { Counter, Gauge, Registry } from 'prom-client'
import type { TransactionTracker } from '../views/transactions.js'
import { Buckets, HistogramFamily, LATENCY, labelText } from './histogram.js'
import { toLabel } from './labels.js'

/**
 * Transaction tracking in `/metrics` (appended to metrics.ts's exposition): the latency between
 * checkpoint pairs as a histogram counted since the start, in the same buckets as the edge
 * latencies (histogram.ts), so that Prometheus and the fleet view add several agents' up; and the
 * tracker's counts. Label sets are the pairs the tracker keeps (at most `maxPairs`); a pair quiet
 * for the window leaves.
 */

interface PairCounts {
  labels: string
  latency: Buckets
  lastSeen: number
}

export class TransactionMetrics {
  private readonly registry = new Registry()
  private readonly pairs = new Map<string, PairCounts>()
  private readonly latency = new HistogramFamily<PairCounts>(
    'pathwise_transaction_latency_seconds',
    'Latency from one checkpoint of a transaction to a later one (trackTransaction).',
    (p) => p.latency,
  )
  private readonly tracked = new Gauge({ name: 'pathwise_transaction_ids', help: 'Transaction ids remembered for pairing.', registers: [this.registry] })
  private readonly limit = new Gauge({ name: 'pathwise_transaction_ids_limit', help: 'Most transaction ids remembered at once.', registers: [this.registry] })
  private readonly records = new Counter({
    name: 'pathwise_transaction_records_total',
    help: 'Transaction records received, by what became of them.',
    labelNames: ['result'],
    registers: [this.registry],
  })
  private readonly evicted = new Counter({
    name: 'pathwise_transaction_ids_evicted_total',
    help: 'Transaction ids forgotten because the cap on remembered ids was reached.',
    registers: [this.registry],
  })
  private readonly dropped = new Counter({
    name: 'pathwise_transaction_latencies_dropped_total',
    help: 'Latencies not kept because the caps on checkpoint pairs or (pair, bucket) cells were reached.',
    registers: [this.registry],
  })

  constructor(
    private readonly tracker: TransactionTracker,
    private readonly now: () => number = Date.now,
  ) {
    tracker.onLatency((from, to, seconds) => {
      const key = `${from}\u0000${to}`
      let pair = this.pairs.get(key)
      if (!pair) {
        const labels = labelText([
          ['from_checkpoint', toLabel(from)],
          ['to_checkpoint', toLabel(to)],
        ])
        this.pairs.set(key, (pair = { labels, latency: new Buckets(LATENCY), lastSeen: 0 }))
      }
      pair.latency.add(seconds)
      pair.lastSeen = this.now()
    })
  }

  async render(): Promise<string> {
    const view = this.tracker.view(60)
    const quiet = this.now() - this.tracker.windowMs
    for (const [key, pair] of this.pairs) if (pair.lastSeen <= quiet) this.pairs.delete(key)
    this.tracked.set(view.ids.tracked)
    this.limit.set(view.ids.max)
    const c = view.counters
    this.records.reset()
    this.records.inc({ result: 'read' }, c.records)
    this.records.inc({ result: 'duplicate' }, c.duplicates)
    this.records.inc({ result: 'out_of_window' }, c.outOfWindow)
    this.records.inc({ result: 'unknown_checkpoint' }, c.unknownCheckpoint)
    this.records.inc({ result: 'malformed' }, c.malformed)
    this.records.inc({ result: 'dropped_name' }, c.droppedNames)
    this.evicted.reset()
    this.evicted.inc(c.evictedIds)
    this.dropped.reset()
    this.dropped.inc(c.droppedLatencies)
    let text = await this.registry.metrics()
    if (this.pairs.size > 0) {
      text += this.latency.header()
      for (const pair of this.pairs.values()) text += this.latency.write(pair, pair.labels)
    }
    return text
  }
}
