/**
 * A three-service pipeline on a real RabbitMQ 3.10, each service a process of its own, for each
 * client (amqplib over AMQP 0-9-1, rhea over AMQP 1.0) in the automatic mode (`--import` and `-r
 * pathwise/register`) and with the explicit functions: a publishes to Q1 (to the default exchange,
 * through a named exchange, and once with no headers or properties of its own); b consumes Q1 with
 * several async handlers at once and publishes each message on through another exchange to Q2; c
 * pulls Q2 (amqplib `get`; rhea one credit at a time). Checked: each message's context in b and c
 * (the header it carries, the context current in its handler) is its own; each checkpoint's
 * parent is the one it came from, with dd-trace-js 6.21's edge tags; bodies and user headers
 * arrive as sent; producer and consumer count the same bytes; RabbitMQ keeps every rhea message
 * (no delivery annotations); c's queue depth arrives as a backlog. The fixtures are in
 * test/fixtures/rabbitmq/. Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { decodePathwayContext } from '../bindings/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { ENV, backlogsOf, consumeTags, declare, expectedHash, pointsOf, publishTags, runService, sendTags, unique } from './fixtures/rabbitmq/setup.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/rabbitmq/${name}`, import.meta.url))
const COUNT = 10
const TOTAL = 2 * COUNT + 1

type Client = 'amqplib' | 'rhea'
type Mode = 'auto' | 'explicit'
type Kind = 'q' | 'x'
interface Seen {
  id: string
  header: string | null
  ctx: string | null
  user?: string | null
  from?: string | null
  annotated?: boolean
}

/** Messages of ids x… went through exchange X1, the others (q…, bare) straight to Q1. */
const kindOf = (id: string): Kind => (id.startsWith('x') ? 'x' : 'q')
const hashIn = (header: string | null) => decodePathwayContext(header)?.hash

/** The edge tags of each hop, as dd-trace names them for this client. */
function hopTags(client: Client, q1: string, q2: string, x1: string, x2: string) {
  if (client === 'amqplib') {
    return { aq: publishTags('', q1), ax: publishTags(x1, 'rk1'), bIn: consumeTags(q1), bOut: publishTags(x2, 'rk2'), c: consumeTags(q2) }
  }
  return {
    aq: sendTags(`/amq/queue/${q1}`),
    ax: sendTags(`/exchange/${x1}/rk1`),
    bIn: consumeTags(`/amq/queue/${q1}`),
    bOut: sendTags(`/exchange/${x2}/rk2`),
    c: consumeTags(`/amq/queue/${q2}`),
  }
}

describe('RabbitMQ pipeline a → Q1 → b → Q2 → c, a process each', { concurrency: 2 }, () => {
  let rabbit: RabbitMqPeer
  let agent: TestAgent

  before(async () => {
    ;[rabbit, agent] = await Promise.all([startRabbitMq(), startAgent()])
  })
  after(async () => {
    await agent?.close()
    await rabbit?.stop()
  })

  for (const client of ['amqplib', 'rhea'] as const) {
    for (const mode of ['auto', 'explicit'] as const) {
      test(`${client}, ${mode === 'auto' ? 'the automatic mode (--import, -r, --import)' : 'the explicit functions'}`, async () => {
        await pipeline(client, mode)
      })
    }
  }

  async function pipeline(client: Client, mode: Mode): Promise<void> {
    const [q1, q2, x1, x2] = ['q1', 'q2', 'x1', 'x2'].map((n) => unique(`${client}-${mode}-${n}`))
    const [svcA, svcB, svcC] = ['a', 'b', 'c'].map((r) => `${client}-${mode}-${r}`)
    await declare(rabbit.url, { queues: [q1, q2], bindings: [[x1, 'rk1', q1], [x2, 'rk2', q2]] })
    const register = (loader: '--import' | '-r') => (mode === 'auto' ? [loader, 'pathwise/register'] : [])
    const env = (role: string, service: string) => ({
      DD_DATA_STREAMS_ENABLED: 'true',
      DD_SERVICE: service,
      DD_ENV: ENV,
      DD_TRACE_AGENT_URL: agent.url,
      ROLE: role,
      CLIENT: client,
      MODE: mode,
      URL: rabbit.url,
      PORT: String(rabbit.port),
      Q1: q1,
      Q2: q2,
      X1: x1,
      X2: x2,
      COUNT: String(COUNT),
    })
    const [, b, c] = (await Promise.all([
      runService([...register('--import'), fixture('pipeline-app.mjs')], env('a', svcA)),
      runService([...register('-r'), fixture('pipeline-app.cjs')], env('b', svcB)),
      runService([...register('--import'), fixture('pipeline-app.mjs')], env('c', svcC)),
    ])) as [unknown, { seen: Seen[]; maxInFlight: number }, { seen: Seen[] }]

    const tags = hopTags(client, q1, q2, x1, x2)
    const hA = { q: expectedHash(svcA, tags.aq, 0n), x: expectedHash(svcA, tags.ax, 0n) }
    const hB = { q: expectedHash(svcB, tags.bIn, hA.q), x: expectedHash(svcB, tags.bIn, hA.x) }
    const hB2 = { q: expectedHash(svcB, tags.bOut, hB.q), x: expectedHash(svcB, tags.bOut, hB.x) }
    const hC = { q: expectedHash(svcC, tags.c, hB2.q), x: expectedHash(svcC, tags.c, hB2.x) }

    // b: every message, its own context (handlers overlapped), the user's headers as sent.
    assert.equal(b.seen.length, TOTAL)
    assert.ok(b.maxInFlight > 1, `handlers never overlapped (${b.maxInFlight})`)
    assert.deepEqual(b.seen.map((s) => s.id).sort(), [...Array.from({ length: COUNT }, (_, i) => [`q${i}`, `x${i}`]).flat(), 'bare'].sort())
    for (const s of b.seen) {
      const kind = kindOf(s.id)
      assert.equal(hashIn(s.header), hA[kind], `${s.id}: the header`)
      assert.equal(s.ctx, hB[kind].toString(16), `${s.id}: the context current in its handler`)
      assert.equal(s.user, s.id === 'bare' ? null : `u${s.id.slice(1)}`)
      if (client === 'rhea') assert.equal(s.annotated, false, 'no delivery annotations on RabbitMQ')
    }
    // c: each message carries the context of b's publish of that message, and b's header of its own.
    assert.equal(c.seen.length, TOTAL)
    for (const s of c.seen) {
      const kind = kindOf(s.id)
      assert.equal(hashIn(s.header), hB2[kind], `${s.id}: the header b published`)
      assert.equal(s.from, s.id)
      // Where c's code runs as the message's handler (the callback API's get, rhea's message event), its context is current.
      const handler = client === 'rhea' || mode === 'explicit'
      assert.equal(s.ctx, handler ? hC[kind].toString(16) : null)
    }

    // The Agent: exactly these points, each with its parent and dd-trace's tags, counting every message.
    const expected: [string, bigint, bigint, string[], number][] = [
      [svcA, hA.q, 0n, tags.aq, COUNT + 1],
      [svcA, hA.x, 0n, tags.ax, COUNT],
      [svcB, hB.q, hA.q, tags.bIn, COUNT + 1],
      [svcB, hB.x, hA.x, tags.bIn, COUNT],
      [svcB, hB2.q, hB.q, tags.bOut, COUNT + 1],
      [svcB, hB2.x, hB.x, tags.bOut, COUNT],
      [svcC, hC.q, hB2.q, tags.c, COUNT + 1],
      [svcC, hC.x, hB2.x, tags.c, COUNT],
    ]
    const count = (service: string, hash: bigint) =>
      pointsOf(agent, service)
        .filter((p) => p.Hash === hash)
        .reduce((n, p) => n + decodeSketch(p.PayloadSize).count, 0)
    await agent.waitFor(() => expected.every(([service, hash, , , n]) => count(service, hash) === n), 20_000)
    for (const [service, hash, parent, edgeTags] of expected) {
      for (const p of pointsOf(agent, service).filter((pt) => pt.Hash === hash)) {
        assert.equal(p.ParentHash, parent)
        assert.deepEqual(p.EdgeTags, [...edgeTags].sort())
      }
    }
    for (const service of [svcA, svcB, svcC]) {
      const hashes = new Set(pointsOf(agent, service).map((p) => p.Hash))
      assert.deepEqual([...hashes].sort(), expected.filter(([s]) => s === service).map(([, h]) => h).sort(), `${service}: no other point`)
    }
    // Producer and consumer count the same bytes: body and headers (properties), the context included.
    const point = (service: string, hash: bigint) => pointsOf(agent, service).find((p) => p.Hash === hash)!
    for (const [produced, consumed] of [
      [point(svcA, hA.x), point(svcB, hB.x)],
      [point(svcB, hB2.x), point(svcC, hC.x)],
    ]) {
      const [p, q] = [decodeSketch(produced.PayloadSize).quantile(0.5), decodeSketch(consumed.PayloadSize).quantile(0.5)]
      assert.ok(Math.abs(p - q) <= 0.02 * p, `${p} vs ${q} bytes`)
    }
    if (client === 'amqplib') {
      // c checked Q2's depth until every message was there, then took them: the depth it saw, a backlog.
      const depth = backlogsOf(agent, svcC).get(['queue_type:rabbitmq', 'state:ready', `topic:${q2}`, 'type:queue_depth'].join(','))
      assert.equal(depth, TOTAL)
    }
  }
})
