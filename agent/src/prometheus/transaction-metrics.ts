import { Counter, Gauge, Registry } from 'prom-client'
import type { TransactionTracker } from '../views/transactions.js'

/**
 * Transaction tracking in `/metrics` (appended to metrics.ts's exposition): the latency between
 * checkpoint pairs over the last minute, in seconds, and the tracker's counts. Labels are bounded
 * by the tracker's caps (at most `maxPairs` pairs).
 */
export class TransactionMetrics {
  private readonly registry = new Registry()
  private readonly latency = new Gauge({
    name: 'pathwise_transaction_latency_seconds',
    help: 'Latency from one checkpoint of a transaction to a later one (trackTransaction), quantiles over the last minute.',
    labelNames: ['from_checkpoint', 'to_checkpoint', 'quantile'],
    registers: [this.registry],
  })
  private readonly tracked = new Gauge({ name: 'pathwise_transaction_ids', help: 'Transaction ids remembered for pairing.', registers: [this.registry] })
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

  constructor(private readonly tracker: TransactionTracker) {}

  render(): Promise<string> {
    const view = this.tracker.view(60)
    this.latency.reset()
    for (const p of view.pairs) {
      if (p.latency === null) continue
      for (const [quantile, value] of [['0.5', p.latency.p50], ['0.95', p.latency.p95], ['0.99', p.latency.p99]] as const) {
        this.latency.set({ from_checkpoint: p.from, to_checkpoint: p.to, quantile }, value)
      }
    }
    this.tracked.set(view.ids.tracked)
    const c = view.counters
    this.records.reset()
    this.records.inc({ result: 'read' }, c.records)
    this.records.inc({ result: 'duplicate' }, c.duplicates)
    this.records.inc({ result: 'out_of_window' }, c.outOfWindow)
    this.records.inc({ result: 'unknown_checkpoint' }, c.unknownCheckpoint)
    this.evicted.reset()
    this.evicted.inc(c.evictedIds)
    return this.registry.metrics()
  }
}
