import { Counter, Gauge, Registry } from 'prom-client'
import type { Summary } from './api.js'
import type { Quantiles } from './sketch.js'

/**
 * `GET /metrics` in the Prometheus exposition format, written by prom-client. Every scrape
 * reflects one summary of the store (the same numbers as `/api/summary`): per edge its
 * throughput and latency quantiles, per pathway its end-to-end quantiles, per partition the lag.
 */

const EDGE_LABELS = ['from', 'to', 'kind', 'type', 'topic', 'group'] as const

export class Metrics {
  private readonly registry = new Registry()
  private readonly edgeRate = this.gauge('pathwise_edge_messages_per_second', 'Messages per second on an edge of the pipeline.', [...EDGE_LABELS])
  private readonly edgeLatency = this.gauge('pathwise_edge_latency_seconds', 'Edge latency quantiles.', [...EDGE_LABELS, 'quantile'])
  private readonly edgeSize = this.gauge('pathwise_edge_payload_size_bytes', 'Payload size quantiles.', [...EDGE_LABELS, 'quantile'])
  private readonly pathwayLatency = this.gauge('pathwise_pathway_latency_seconds', 'End-to-end latency quantiles of a pathway, from its first producer to a consumer.', [
    'pathway',
    'service',
    'approximate',
    'quantile',
  ])
  private readonly lagMessages = this.gauge('pathwise_kafka_lag_messages', 'Kafka consumer lag in messages.', ['consumer_group', 'topic', 'partition'])
  private readonly lagSeconds = this.gauge('pathwise_kafka_lag_seconds', 'Kafka consumer lag in seconds, estimated from the produce rate.', [
    'consumer_group',
    'topic',
    'partition',
  ])
  private readonly payloads = new Counter({
    name: 'pathwise_intake_payloads_total',
    help: 'Pipeline stats payloads received.',
    labelNames: ['result'],
    registers: [this.registry],
  })

  get contentType(): string {
    return this.registry.contentType
  }

  render(s: Summary): Promise<string> {
    for (const g of [this.edgeRate, this.edgeLatency, this.edgeSize, this.pathwayLatency, this.lagMessages, this.lagSeconds]) g.reset()
    for (const e of s.edges) {
      const labels = { from: e.from, to: e.to, kind: e.kind, type: e.type, topic: e.topic ?? '', group: e.group ?? '' }
      this.edgeRate.set(labels, e.rate)
      setQuantiles(this.edgeLatency, labels, e.latency)
      setQuantiles(this.edgeSize, labels, e.payloadSize)
    }
    for (const p of s.pathways) {
      setQuantiles(this.pathwayLatency, { pathway: p.nodes.join(' > '), service: p.service, approximate: String(p.approximate) }, p.latency)
    }
    for (const r of s.lag) {
      const labels = { consumer_group: r.group, topic: r.topic, partition: r.partition }
      if (r.lagMessages !== null) this.lagMessages.set(labels, r.lagMessages)
      if (r.lagSeconds !== null) this.lagSeconds.set(labels, r.lagSeconds)
    }
    this.payloads.reset()
    this.payloads.inc({ result: 'accepted' }, s.status.payloads.accepted)
    this.payloads.inc({ result: 'rejected' }, s.status.payloads.rejected)
    return this.registry.metrics()
  }

  private gauge(name: string, help: string, labelNames: string[]): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] })
  }
}

function setQuantiles(g: Gauge, labels: Record<string, string>, q: Quantiles | null): void {
  if (!q) return
  g.set({ ...labels, quantile: '0.5' }, q.p50)
  g.set({ ...labels, quantile: '0.95' }, q.p95)
  g.set({ ...labels, quantile: '0.99' }, q.p99)
}
