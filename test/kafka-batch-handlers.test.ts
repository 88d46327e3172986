/**
 * eachBatch handlers written the ways applications write them, kafkajs and the confluent KafkaJS
 * API on the mock cluster: each of 40 input messages carries a context of its own (a distinct
 * parent hash), and each handler produces one message per input message; at the Agent, the
 * produce made while handling message i must hang off message i (40 of 40 right parents):
 * - `for...of` calling resolveOffset BEFORE the produce (the order no longer matters);
 * - `Promise.all(batch.messages.map(async ...))`, the produces concurrent and out of order;
 * - `forEach` starting the produces, awaited together;
 * - an indexed loop that produces, then resolves (the resolveOffset rule);
 * and an indexed loop that resolves first, which pathwise cannot follow: it warns once, with the fix.
 */
import assert from 'node:assert/strict'
import { after, before, describe, mock, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PATHWAY_KEY, PathwayContext, encodePathwayContext } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentConfluent, instrumentKafkaJs } from '../bindings/kafka/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import {
  clusterIdOf,
  consumeTags,
  createTopics,
  expectedHash,
  flushUntil,
  makeDataStreams,
  newKafka,
  newProducer,
  pointsOf,
  produceTags,
  startConsumer,
  until,
  type ClientKind,
} from './fixtures/kafka/setup.js'

const COUNT = 40
/** The upstream hash written into input message i. */
const upstream = (i: number) => (0x5678n << 32n) | BigInt(i + 1)

type Send = (m: any) => Promise<unknown>
interface Handling {
  batch: { messages: any[] }
  resolveOffset(offset: string): void
  heartbeat(): Promise<void>
}

/** The handlers, each given how to produce for one input message. */
const shapes: Record<string, (send: Send) => (h: Handling) => Promise<void>> = {
  'for...of, resolveOffset first': (send) => async ({ batch, resolveOffset, heartbeat }) => {
    for (const m of batch.messages) {
      resolveOffset(m.offset)
      await send(m)
      await heartbeat()
    }
  },
  'Promise.all over map': (send) => async ({ batch }) => {
    await Promise.all(
      batch.messages.map(async (m: any, j: number) => {
        await sleep((COUNT - j) % 4)
        await send(m)
      }),
    )
  },
  'forEach, then Promise.all': (send) => async ({ batch }) => {
    const sends: Promise<unknown>[] = []
    batch.messages.forEach((m: any) => sends.push(send(m)))
    await Promise.all(sends)
  },
  'indexed loop, produce then resolveOffset': (send) => async ({ batch, resolveOffset }) => {
    for (let i = 0; i < batch.messages.length; i++) {
      await send(batch.messages[i])
      resolveOffset(batch.messages[i].offset)
    }
  },
}

describe('eachBatch handlers', () => {
  let peer: KafkaPeer
  let agent: TestAgent
  let clusterId: string
  const dsms: DataStreams[] = []
  const input = 'handlers-in'

  before(async () => {
    ;[peer, agent] = await Promise.all([startKafka(), startAgent()])
    clusterId = await clusterIdOf(peer.brokers)
    await createTopics(peer.brokers, [input])
    // The input, written by a client pathwise does not know, to one partition: each message with its own parent.
    const now = Date.now()
    const raw = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
    await raw.send({
      topic: input,
      messages: Array.from({ length: COUNT }, (_, i) => {
        const ctx = new PathwayContext(0x5678, i + 1, now - 2000, now - 1000)
        return { key: 'k', value: String(i), headers: { [PATHWAY_KEY]: encodePathwayContext(ctx) } }
      }),
    })
    await raw.disconnect()
  })
  after(async () => {
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent.close()
    await peer.stop()
  })

  /**
   * Runs `handler` over the input in a group of its own, producing to `output` for each message,
   * and returns, per input message, whether its produce hung off it at the Agent.
   */
  async function run(kind: ClientKind, name: string, handler: (send: Send) => (h: Handling) => Promise<void>): Promise<boolean[]> {
    const service = `${kind}-${name.replace(/[^a-z]+/g, '-')}`
    const output = `${service}-out`
    const group = `${service}-group`
    const dsm = makeDataStreams(agent, service)
    dsms.push(dsm)
    const kafka = newKafka(kind, peer.brokers)
    const undo = kind === 'kafkajs' ? instrumentKafkaJs(kafka, dsm) : instrumentConfluent(kafka, dsm)
    const producer = await newProducer(kind, kafka)
    let handled = 0
    const send: Send = async (m) => {
      await producer.send({ topic: output, messages: [{ key: 'k', value: m.value }] })
      handled++
    }
    const consumer = await startConsumer(kind, kafka, group, input, { eachBatch: handler(send) })
    await until(() => handled === COUNT, `${name}: ${COUNT} messages handled`, 30_000)
    const cid = kind === 'kafkajs' ? clusterId : undefined
    const consumed = (i: number) => expectedHash(service, consumeTags(group, input, cid), upstream(i))
    const produced = (i: number) => expectedHash(service, produceTags(output, cid), consumed(i))
    const outOf = (tags: readonly string[]) => tags.includes(`topic:${output}`)
    // Produces per parent: a produce hung off the wrong message counts twice under another's hash.
    const perHash = () => {
      const counts = new Map<bigint, number>()
      for (const p of pointsOf(agent, service)) if (outOf(p.EdgeTags)) counts.set(p.Hash, (counts.get(p.Hash) ?? 0) + decodeSketch(p.PayloadSize).count)
      return counts
    }
    await flushUntil([dsm], () => [...perHash().values()].reduce((a, b) => a + b, 0) === COUNT)
    const counts = perHash()
    await Promise.all([consumer.disconnect(), producer.disconnect()])
    undo()
    return Array.from({ length: COUNT }, (_, i) => counts.get(produced(i)) === 1)
  }

  for (const kind of ['kafkajs', 'confluent'] as ClientKind[]) {
    test(`${kind}: every produce hangs off the message being handled, whatever the handler's shape`, async () => {
      const results = await Promise.all(Object.entries(shapes).map(async ([name, handler]) => [name, await run(kind, name, handler)] as const))
      for (const [name, right] of results) {
        assert.equal(right.filter(Boolean).length, COUNT, `${name}: messages whose produce has the wrong parent: ${right.flatMap((ok, i) => (ok ? [] : [i])).join(', ')}`)
      }
    })
  }

  test('an indexed loop that resolves before it produces: one warning, naming the fix', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const resolveFirst = (send: Send) => async ({ batch, resolveOffset }: Handling) => {
        for (let i = 0; i < batch.messages.length; i++) {
          resolveOffset(batch.messages[i].offset)
          await send(batch.messages[i])
        }
      }
      const [viaKafkajs, viaConfluent] = await Promise.all([run('kafkajs', 'resolve first', resolveFirst), run('confluent', 'resolve first', resolveFirst)])
      // What the warning is about: all but the last message of each batch hang off the next one.
      assert.ok(viaKafkajs.filter(Boolean).length < COUNT && viaConfluent.filter(Boolean).length < COUNT)
      const warnings = warn.mock.calls.map((c) => String(c.arguments[0])).filter((w) => w.includes('resolveOffset'))
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0], /before it produces/)
      assert.match(warnings[0], /for \(const message of batch\.messages\)/)
      assert.match(warnings[0], /withMessageContext\(dsm, message, fn\)/)
    } finally {
      warn.mock.restore()
    }
  })
})
