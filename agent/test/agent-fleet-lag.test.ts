/**
 * Fleet lag in real time, the README's "Many hosts" followed as written: its prometheus.yml (its
 * scrape interval, its job; only the targets are this test's two agents), an agent taking the
 * producer's payloads, another the consumers', and the fleet view (`pathwise agent --prometheus`).
 * Tracers flush each 10 s bucket on their own timers (the producer 1 s after the bucket ends, the
 * consumers 6 s after), 50 messages a second. A third agent takes every payload, as one agent
 * for the whole pipeline would. Group `fast` commits every 100 ms (5 messages behind at most) and
 * reports commits only, as dd-trace-js does: its lag pairs the producer's offsets, on the other
 * agent, with its commits of the same bucket. Group `slow` is 30 s behind and reports the high
 * watermarks it fetched beside its commits, as pathwise and dd-trace-go do. At every poll over
 * 20 s, the fleet view shows the single agent's lag, in messages and in seconds: ≈ 0 for `fast`,
 * 1,500 messages and 30 s for `slow`, the same at every poll.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { Summary } from '../src/views/api.js'
import type { LagRow } from '../src/views/lag.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, type BucketSpec } from './helpers/agent-fixtures.js'
import { killAgentProcesses, startAgentProcess, waitFor, type AgentProcess } from './helpers/agent-process.js'
import { readmePrometheusConfig, startPrometheus, withTargets, type RunningPrometheus } from './helpers/prometheus.js'

const RATE = 50
const BUCKET = 10_000
/** The last message's offset in bucket k (a produce offset), counted from an old base. */
const produced = (k: number): number => 100_000 + RATE * 10 * (k + 1) - 1
const POLLS = 7

type Lag = Pick<LagRow, 'group' | 'lagMessages' | 'lagSeconds'>
// Seconds to a tenth: a bucket whose watermark a scrape missed is interpolated over 20 s instead of 10.
const lagOf = (s: Summary): Lag[] => s.lag.map((r) => ({ group: r.group, lagMessages: r.lagMessages, lagSeconds: r.lagSeconds === null ? null : Math.round(r.lagSeconds * 10) / 10 }))

describe("fleet lag in real time, the README's scrape config as written", { timeout: 180_000 }, () => {
  let prometheus: RunningPrometheus
  let view: AgentProcess
  const agents: RunningAgent[] = []
  let feeding = true
  let fed: Promise<void> = Promise.resolve()
  let flushed = 0

  before(async () => {
    const [producers, consumers, single] = await Promise.all([0, 1, 2].map(() => startAgent({ port: 0, log: () => {} })))
    agents.push(producers, consumers, single)
    prometheus = await startPrometheus(withTargets(readmePrometheusConfig(), [`127.0.0.1:${producers.port}`, `127.0.0.1:${consumers.port}`]))
    view = await startAgentProcess('--prometheus', prometheus.url)

    const send = async (service: string, startMs: number, spec: Omit<BucketSpec, 'startMs'>, to: RunningAgent): Promise<void> => {
      const body = pathwisePayload(service, [{ startMs, ...spec }])
      for (const agent of [to, single]) assert.equal((await postStats(agent.url, body)).status, 200)
    }
    const first = Date.now() - (Date.now() % BUCKET)
    const feed = async (): Promise<void> => {
      for (let k = 0; feeding; k++) {
        const start = first + k * BUCKET
        await sleep(start + BUCKET + 1000 - Date.now())
        if (!feeding) return
        await send('orders-api', start, {
          points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: 0xa1n, edge: [0, 0, 0] }],
          backlogs: [{ tags: ['partition:0', 'topic:orders', 'type:kafka_produce'], value: produced(k) }],
        }, producers)
        await sleep(start + BUCKET + 6000 - Date.now())
        if (!feeding) return
        await send('fast-reader', start, {
          points: [{ tags: ['direction:in', 'group:fast', 'topic:orders', 'type:kafka'], hash: 0xb1n, parent: 0xa1n, edge: [0.05, 0.06] }],
          backlogs: [{ tags: ['consumer_group:fast', 'partition:0', 'topic:orders', 'type:kafka_commit'], value: produced(k) - 4 }],
        }, consumers)
        await send('slow-reader', start, {
          points: [{ tags: ['direction:in', 'group:slow', 'topic:orders', 'type:kafka'], hash: 0xc1n, parent: 0xa1n, edge: [30, 30] }],
          backlogs: [
            // Its last fetch saw the partition's end; its commits are 30 s of messages behind.
            { tags: ['partition:0', 'topic:orders', 'type:kafka_high_watermark'], value: produced(k) + 1 },
            { tags: ['consumer_group:slow', 'partition:0', 'topic:orders', 'type:kafka_commit'], value: produced(k - 3) + 1 },
          ],
        }, consumers)
        flushed = k + 1
      }
    }
    fed = feed()
  })

  after(async () => {
    feeding = false
    killAgentProcesses()
    await prometheus?.stop()
    await fed.catch(() => {})
    await Promise.all(agents.map((a) => a.close()))
  })

  test('a consumer that keeps up shows ≈ 0 and one 30 s behind shows 30 s, in the fleet view as in one agent, at every poll', async () => {
    const expected: Lag[] = [
      // The slow consumer's watermark (the next offset) is the end: 5 messages, the last 0.1 s of the bucket.
      { group: 'fast', lagMessages: 5, lagSeconds: 0.1 },
      { group: 'slow', lagMessages: 1500, lagSeconds: 30 },
    ]
    // Four buckets flushed and scraped: the slow consumer's commit is where the end was three buckets before.
    // The fleet view says the window it needs when it starts.
    await waitFor('the fleet view to say what it needs', () => view.stdout(), (out) => /the fleet that http:\/\/127\.0\.0\.1:\d+ scrapes; it needs a scrape every 10 s or more often/.test(out))
    await waitFor('four buckets flushed', () => flushed, (n) => n >= 4, 90_000)
    await waitFor('the fleet view to read them', () => getJson<Summary>(view.url, '/api/summary').then(lagOf), (lag) => JSON.stringify(lag) === JSON.stringify(expected), 30_000)
    for (let i = 0; i < POLLS; i++) {
      const [fleet, single] = await Promise.all([getJson<Summary>(view.url, '/api/summary'), getJson<Summary>(agents[2].url, '/api/summary')])
      assert.deepEqual(lagOf(single), expected, `one agent, poll ${i}`)
      assert.deepEqual(lagOf(fleet), expected, `the fleet view, poll ${i}`)
      const edges = (s: Summary) => s.edges.filter((e) => e.lag).map((e) => [e.id, e.lag])
      assert.deepEqual(edges(fleet), edges(single))
      await sleep(3000)
    }
  })
})
