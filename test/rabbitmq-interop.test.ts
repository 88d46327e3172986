/**
 * Interop with dd-trace 6.21, every service a process on Node 24 (dd-trace 6 needs Node 22 or
 * later; bench/node24.ts installs it once), the same application code under either tracer
 * (test/fixtures/rabbitmq/interop-service.cjs): amqplib on RabbitMQ 3.10 both ways (dd-trace →
 * pathwise → dd-trace, pathwise → dd-trace → pathwise), rhea on a peer-to-peer link both ways (a
 * peer that takes delivery annotations, dd-trace's carrier), and rhea on RabbitMQ, where
 * dd-trace's sender loses its messages and pathwise's do not. Checked: each consume's parent is
 * the hash of the produce it came from, across tracers (dd-trace hashes with SHA-256, pathwise
 * with FNV-1: only the parents travel); dd-trace's edge tags are the ones pathwise writes.
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import amqplib from 'amqplib'
import { node24Binary } from '../bench/node24.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { freePort } from './peers/ports.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { ENV, consumeTags, declare, expectedHash, pointsOf, publishTags, runService, sendTags, unique, type ServicePoint } from './fixtures/rabbitmq/setup.js'

const SERVICE = fileURLToPath(new URL('./fixtures/rabbitmq/interop-service.cjs', import.meta.url))
const COUNT = 5
type Tracer = 'dd-trace' | 'pathwise'

const sorted = (tags: readonly string[]) => [...tags].sort()
const hasTags = (tags: readonly string[]) => (p: ServicePoint) => p.EdgeTags.length === tags.length && sorted(p.EdgeTags).every((t, i) => t === sorted(tags)[i])

describe('interop with dd-trace 6.21 (Node 24)', { concurrency: true }, () => {
  let rabbit: RabbitMqPeer
  let agent: TestAgent
  let node24: string

  before(async () => {
    ;[rabbit, agent, node24] = await Promise.all([startRabbitMq(), startAgent(), node24Binary((line) => console.error(line))])
  })
  after(async () => {
    await agent?.close()
    await rabbit?.stop()
  })

  /** A service under a tracer, on Node 24. */
  const run = (tracer: Tracer, service: string, role: string, env: Record<string, string>) =>
    runService(['-r', tracer === 'dd-trace' ? 'dd-trace/init' : 'pathwise/register', SERVICE], {
      DD_DATA_STREAMS_ENABLED: 'true',
      DD_SERVICE: service,
      DD_ENV: ENV,
      DD_TRACE_AGENT_URL: agent.url,
      // dd-trace's traces go to the same stand-in, which takes only DSM payloads: nothing else to report.
      DD_TRACE_STARTUP_LOGS: 'false',
      DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
      ROLE: role,
      COUNT: String(COUNT),
      URL: rabbit.url,
      ...env,
    }, 60_000, node24) as Promise<unknown[]>

  /** The points of `service` with these tags, once the Agent has `n` messages of them. */
  const arrived = async (service: string, tags: readonly string[], n: number): Promise<ServicePoint[]> => {
    const points = () => pointsOf(agent, service).filter(hasTags(tags))
    await agent.waitFor(() => points().reduce((sum, p) => sum + decodeSketch(p.PayloadSize).count, 0) >= n, 20_000)
    return points()
  }

  for (const [first, middle] of [
    ['dd-trace', 'pathwise'],
    ['pathwise', 'dd-trace'],
  ] as const) {
    test(`amqplib: ${first} publishes → ${middle} relays → ${first} consumes`, async () => {
      const id = `${first}-${middle}`
      const [q1, q2, x1, x2] = ['q1', 'q2', 'x1', 'x2'].map((n) => unique(`interop-${id}-${n}`))
      const [svcA, svcB, svcC] = ['publish', 'relay', 'consume'].map((r) => `interop-${id}-${r}`)
      await declare(rabbit.url, { queues: [q1, q2], bindings: [[x1, 'rk1', q1], [x2, 'rk2', q2]] })
      const queues = { Q1: q1, Q2: q2, X1: x1, X2: x2 }
      const [, relayed, consumed] = await Promise.all([
        run(first, svcA, 'publish', queues),
        run(middle, svcB, 'relay', queues),
        run(first, svcC, 'consume', { ...queues, GET: first === 'pathwise' ? '1' : '0' }),
      ])
      assert.equal(relayed.length, 2 * COUNT)
      assert.ok([...relayed, ...consumed].every((header) => typeof header === 'string'), 'every message carried a context')

      // Each hop's points by their tags: dd-trace's tags are pathwise's (the hashes below are pathwise's own, from them).
      const [toQueue, toExchange] = await Promise.all([arrived(svcA, publishTags('', q1), COUNT), arrived(svcA, publishTags(x1, 'rk1'), COUNT)])
      const relayIn = await arrived(svcB, consumeTags(q1), 2 * COUNT)
      const relayOut = await arrived(svcB, publishTags(x2, 'rk2'), 2 * COUNT)
      const end = await arrived(svcC, consumeTags(q2), 2 * COUNT)
      const hashes = (points: ServicePoint[]) => new Set(points.map((p) => p.Hash))
      const parents = (points: ServicePoint[]) => new Set(points.map((p) => p.ParentHash))
      if (first === 'pathwise') {
        assert.deepEqual([...hashes(toQueue), ...hashes(toExchange)], [expectedHash(svcA, publishTags('', q1), 0n), expectedHash(svcA, publishTags(x1, 'rk1'), 0n)])
      }
      // The relay's consumes hang off the two publishes; its publishes off its consumes; the end's consumes off those.
      assert.deepEqual(parents(relayIn), new Set([...hashes(toQueue), ...hashes(toExchange)]))
      assert.deepEqual(parents(relayOut), hashes(relayIn))
      assert.deepEqual(parents(end), hashes(relayOut))
      if (middle === 'pathwise') {
        for (const p of relayIn) assert.equal(p.Hash, expectedHash(svcB, consumeTags(q1), p.ParentHash))
      } else {
        for (const p of end) assert.equal(p.Hash, expectedHash(svcC, consumeTags(q2), p.ParentHash))
      }
    })
  }

  for (const [sender, listener] of [
    ['dd-trace', 'pathwise'],
    ['pathwise', 'dd-trace'],
  ] as const) {
    test(`rhea on a peer that takes delivery annotations: ${sender} sends → ${listener} receives`, async () => {
      const id = `${sender}-${listener}`
      const [svcSend, svcListen] = [`interop-rhea-${id}-send`, `interop-rhea-${id}-listen`]
      const address = `interop-${id}`
      const port = String(await freePort())
      const [got, outcome] = (await Promise.all([run(listener, svcListen, 'listen', { PORT: port }), run(sender, svcSend, 'send', { PORT: port, ADDRESS: address })])) as [
        { annotation: string | null; property: string | null }[],
        string[],
      ]
      assert.deepEqual(outcome, ['accepted'])
      assert.equal(got.length, COUNT)
      // dd-trace writes the delivery annotation; pathwise, on a peer other than RabbitMQ, both.
      for (const m of got) assert.ok(m.annotation !== null && (sender === 'dd-trace' || m.property === m.annotation))
      const sent = await arrived(svcSend, sendTags(address), COUNT)
      // A link the peer opened has no source address of its own: both name it amq.topic.
      const received = await arrived(svcListen, consumeTags('amq.topic'), COUNT)
      assert.deepEqual(new Set(received.map((p) => p.ParentHash)), new Set(sent.map((p) => p.Hash)))
      if (sender === 'pathwise') assert.deepEqual([...new Set(sent.map((p) => p.Hash))], [expectedHash(svcSend, sendTags(address), 0n)])
      else for (const p of received) assert.equal(p.Hash, expectedHash(svcListen, consumeTags('amq.topic'), p.ParentHash))
    })
  }

  test("rhea on RabbitMQ 3.10: dd-trace's sender loses its messages (the connection is reset), with DSM or tracing alone; pathwise's arrive", async () => {
    // dd-trace's rhea sender writes its trace context into delivery annotations too, DSM or not.
    const runs = { 'dd-trace': { tracer: 'dd-trace', dsm: 'true' }, 'dd-trace tracing': { tracer: 'dd-trace', dsm: 'false' }, pathwise: { tracer: 'pathwise', dsm: 'true' } } as const
    const names = Object.keys(runs) as (keyof typeof runs)[]
    const queues = Object.fromEntries(names.map((n) => [n, unique('interop-rhea-rabbit')])) as Record<keyof typeof runs, string>
    await declare(rabbit.url, { queues: Object.values(queues), bindings: [] })
    const outcomes = Object.fromEntries(
      await Promise.all(
        names.map(async (n) => {
          const env = { PORT: String(rabbit.port), RABBIT_USER: rabbit.username, ADDRESS: `/amq/queue/${queues[n]}`, DD_DATA_STREAMS_ENABLED: runs[n].dsm }
          return [n, await run(runs[n].tracer, `interop-rhea-rabbit-${n.replace(' ', '-')}`, 'send', env)] as const
        }),
      ),
    ) as Record<keyof typeof runs, unknown[]>
    assert.match(String(outcomes['dd-trace'][0]), /^disconnected: ECONNRESET/)
    assert.match(String(outcomes['dd-trace tracing'][0]), /^disconnected: ECONNRESET/)
    assert.deepEqual(outcomes.pathwise, ['accepted'])
    const connection = await amqplib.connect(rabbit.url)
    try {
      const channel = await connection.createChannel()
      assert.equal((await channel.checkQueue(queues['dd-trace'])).messageCount, 0)
      assert.equal((await channel.checkQueue(queues['dd-trace tracing'])).messageCount, 0)
      assert.equal((await channel.checkQueue(queues.pathwise)).messageCount, COUNT)
    } finally {
      await connection.close()
    }
  })
})
