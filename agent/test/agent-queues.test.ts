/**
 * The views of queues that are not Kafka topics, from payloads sent to a real agent over HTTP:
 * RabbitMQ exchanges as nodes of their own (a publish that names an exchange, not a queue), the
 * route edge from an exchange to each queue its messages reached (read from parent links), the
 * pathway through both, and a queue's depth (`queue_depth` backlogs) as its consumers' lag.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { pathwisePayload, postStats } from './helpers/agent-fixtures.js'

/** A bucket start; the clock is set so that it and the one before have settled. */
const B = Date.UTC(2026, 0, 1, 12, 0, 0)
const depth = (queue: string, state: string, value: number) => ({ tags: ['type:queue_depth', 'queue_type:rabbitmq', `topic:${queue}`, `state:${state}`], value })

describe('RabbitMQ exchanges, routes and queue depth', () => {
  let agent: RunningAgent
  let s: Summary
  before(async () => {
    agent = await startAgent({ port: 0, log: () => {}, now: () => B + 25_000 })
    const payloads = [
      pathwisePayload('shop', [
        {
          startMs: B,
          points: [
            // Two publishes through the exchange `orders`, one straight to the queue `audit` (the default exchange).
            { tags: ['direction:out', 'exchange:orders', 'has_routing_key:true', 'type:rabbitmq'], hash: 0x11n, edge: [0, 0] },
            { tags: ['direction:out', 'has_routing_key:true', 'topic:audit', 'type:rabbitmq'], hash: 0x12n, edge: [0] },
          ],
        },
      ]),
      pathwisePayload('billing', [
        {
          startMs: B,
          points: [{ tags: ['direction:in', 'topic:billing-q', 'type:rabbitmq'], hash: 0x21n, parent: 0x11n, edge: [0.02, 0.04] }],
          backlogs: [depth('billing-q', 'ready', 12), depth('billing-q', 'ready', 30)],
        },
        { startMs: B - 10_000, backlogs: [depth('billing-q', 'ready', 50)] },
      ]),
      pathwisePayload('auditor', [{ startMs: B, points: [{ tags: ['direction:in', 'topic:audit', 'type:rabbitmq'], hash: 0x31n, parent: 0x12n, edge: [0.01] }] }]),
    ]
    for (const p of payloads) assert.equal((await postStats(agent.url, p)).status, 200)
    s = (await (await fetch(`${agent.url}/api/summary`)).json()) as Summary
  })
  after(() => agent.close())

  test('an exchange is a node of its own kind, between its publishers and the queues it routed to', () => {
    const nodes = new Map(s.nodes.map((n) => [n.id, n]))
    const exchange = nodes.get('rabbitmq:exchange:orders')
    assert.deepEqual(exchange && [exchange.kind, exchange.name, exchange.type, exchange.role], ['exchange', 'orders', 'rabbitmq', 'exchange'])
    assert.deepEqual(
      ['rabbitmq:billing-q', 'rabbitmq:audit'].map((id) => [nodes.get(id)?.kind, nodes.get(id)?.role]),
      [
        ['queue', 'queue'],
        ['queue', 'queue'],
      ],
    )
    assert.deepEqual(
      s.edges.map((e) => [e.id, e.kind, e.count]),
      [
        ['rabbitmq:audit>service:auditor', 'consume', 1],
        ['rabbitmq:billing-q>service:billing', 'consume', 2],
        ['rabbitmq:exchange:orders>rabbitmq:billing-q', 'route', 2],
        ['service:shop>rabbitmq:audit', 'produce', 1],
        ['service:shop>rabbitmq:exchange:orders', 'produce', 2],
      ],
    )
    const route = s.edges.find((e) => e.kind === 'route')!
    // Its points are the consumes: their latency belongs to the consume edge, not to the route.
    assert.equal(route.latency, null)
    assert.equal(route.exchange, 'orders')
    assert.equal(exchange!.outRate, route.rate)
    assert.deepEqual(
      s.pathways.map((p) => p.nodes),
      [
        ['service:shop', 'rabbitmq:audit', 'service:auditor'],
        ['service:shop', 'rabbitmq:exchange:orders', 'rabbitmq:billing-q', 'service:billing'],
      ],
    )
  })

  test("a queue's latest depth is its consumers' lag; in seconds, at the rate they take messages", () => {
    const billing = s.edges.find((e) => e.id === 'rabbitmq:billing-q>service:billing')!
    // The latest bucket's highest sample; the older bucket's 50 is history.
    assert.equal(billing.lag?.messages, 30)
    assert.ok(billing.rate > 0)
    assert.ok(Math.abs(billing.lag!.seconds! - 30 / billing.rate) < 1e-9)
    assert.equal(s.edges.find((e) => e.id === 'rabbitmq:audit>service:auditor')!.lag, undefined, 'no depth reported, no lag')
    // Kafka's lag table is Kafka's.
    assert.deepEqual(s.lag, [])
  })

  test('/metrics exports no queue depth as a Kafka offset', async () => {
    const text = await (await fetch(`${agent.url}/metrics`)).text()
    assert.ok(!/pathwise_kafka_offset\{[^}]*queue_depth/.test(text))
  })
})
