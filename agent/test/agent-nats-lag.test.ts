/**
 * JetStream consumer lag (views/lag.ts, model/store.ts): a durable consumer's `nats_pending`
 * backlogs (its num_pending, as pathwise sends it) are the consumer's lag in messages: a row of
 * `/api/lag` per consumer and stream, the lag of the consume edges of its group on the map, the
 * pending count bucket by bucket on `/api/edge`, and `pathwise_kafka_offset{kind="nats_pending"}`
 * on `/metrics`. Payloads go to the agent over HTTP, as tracers send them.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { EdgeDetail, Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'

const B = Date.UTC(2026, 0, 1, 12, 0, 0)
const pending = (consumer: string, stream: string, value: number) => ({ tags: ['type:nats_pending', `consumer_group:${consumer}`, `stream:${stream}`], value })

describe('JetStream consumer lag from nats_pending backlogs', () => {
  let agent: RunningAgent
  let s: Summary

  before(async () => {
    agent = await startAgent({ port: 0, log: () => {}, now: () => B + 25_000 })
    const consume = { tags: ['direction:in', 'group:shipper', 'topic:shipments.created', 'type:nats'], hash: 0x21n, edge: [0.01] }
    const res = await postStats(
      agent.url,
      pathwisePayload('shipping', [
        { startMs: B - 10_000, points: [consume], backlogs: [pending('shipper', 'SHIPMENTS', 40), pending('shipper', 'SHIPMENTS', 25)] },
        { startMs: B, points: [consume], backlogs: [pending('shipper', 'SHIPMENTS', 12)] },
      ]),
    )
    assert.equal(res.status, 200, res.text)
    s = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(() => agent.close())

  test("a row per consumer: the latest bucket's pending count, no offsets", () => {
    const rows = s.lag.filter((r) => r.transport === 'nats')
    assert.deepEqual(rows, [
      {
        transport: 'nats',
        group: 'shipper',
        topic: 'SHIPMENTS',
        partition: '',
        cluster: '',
        produceOffset: null,
        highWatermark: null,
        commitOffset: null,
        lagMessages: 12,
        lagSeconds: null,
        produceRate: null,
      },
    ])
  })

  test("the consume edge of the consumer's group shows it; /api/edge has its history (the highest of each bucket)", async () => {
    const edge = s.edges.find((e) => e.kind === 'consume' && e.type === 'nats' && e.group === 'shipper')
    assert.ok(edge, JSON.stringify(s.edges))
    assert.deepEqual(edge.lag, { messages: 12, seconds: null })
    const d = await getJson<EdgeDetail>(agent.url, `/api/edge?id=${encodeURIComponent(edge.id)}`)
    assert.deepEqual(d.lag.map((r) => [r.transport, r.topic, r.lagMessages]), [['nats', 'SHIPMENTS', 12]])
    assert.deepEqual(d.lagHistory, [
      {
        partition: 'SHIPMENTS',
        cluster: '',
        points: [
          [B - 10_000, 40],
          [B, 12],
        ],
      },
    ])
  })

  test('/metrics: the latest pending count as pathwise_kafka_offset{kind="nats_pending"}, and no Kafka lag', async () => {
    const text = await (await fetch(`${agent.url}/metrics`)).text()
    assert.match(text, /pathwise_kafka_offset\{kind="nats_pending",consumer_group="shipper",topic="SHIPMENTS",partition="",kafka_cluster_id=""\} 12/)
    assert.doesNotMatch(text, /pathwise_kafka_lag_messages\{/)
  })
})
