/**
 * eachBatch with several hundred messages, kafkajs and the confluent KafkaJS API: one consume
 * checkpoint per message, and the context rule (bindings/kafka/message-context.ts): the first
 * message's context when the handler starts, the next message's after each `resolveOffset`, the
 * last one's at the end, any message's inside `withMessageContext` (even concurrently).
 * Each input message carries a context of its own (a distinct parent hash), so that a context
 * names its message; a produce made while handling message i must hang off message i.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PATHWAY_KEY, PathwayContext, encodePathwayContext } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentConfluent, instrumentKafkaJs } from '../bindings/kafka/index.js'
import { contextOf, withMessageContext } from '../bindings/instrument/received-messages.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import {
  backlogKey,
  backlogsOf,
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

const COUNT = 300
/** The upstream hash written into input message i. */
const upstream = (i: number) => (0x1234n << 32n) | BigInt(i + 1)

describe('eachBatch', () => {
  let peer: KafkaPeer
  let agent: TestAgent
  let clusterId: string
  const dsms: DataStreams[] = []

  before(async () => {
    ;[peer, agent] = await Promise.all([startKafka(), startAgent()])
    clusterId = await clusterIdOf(peer.brokers)
  })
  after(async () => {
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent.close()
    await peer.stop()
  })

  for (const kind of ['kafkajs', 'confluent'] as ClientKind[]) {
    test(`${kind}: ${COUNT} messages, one checkpoint each, the context follows resolveOffset`, async () => {
      const [input, output, group, service] = [`batch-in-${kind}`, `batch-out-${kind}`, `batch-${kind}`, `batch-${kind}`]
      await createTopics(peer.brokers, [input, output])
      // The input, written by a client pathwise does not know: each message with its own parent.
      const now = Date.now()
      const raw = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
      await raw.send({
        topic: input,
        messages: Array.from({ length: COUNT }, (_, i) => {
          const ctx = new PathwayContext(0x1234, i + 1, now - 2000, now - 1000)
          return { key: 'k', value: String(i), headers: { [PATHWAY_KEY]: encodePathwayContext(ctx) } }
        }),
      })
      await raw.disconnect()

      const dsm = makeDataStreams(agent, service)
      dsms.push(dsm)
      const kafka = newKafka(kind, peer.brokers)
      const undo = kind === 'kafkajs' ? instrumentKafkaJs(kafka, dsm) : instrumentConfluent(kafka, dsm)
      const producer = await newProducer(kind, kafka)
      const cid = kind === 'kafkajs' ? clusterId : undefined
      const consumed = (i: number) => expectedHash(service, consumeTags(group, input, cid), upstream(i))
      const index = (m: any) => Number(m.value.toString())

      const atStart: [number, bigint | undefined][] = []
      const atEnd: [number, bigint | undefined][] = []
      const inLoop: [number, bigint | undefined][] = []
      const pinned: [number, bigint | undefined][] = []
      const remembered: [number, bigint | undefined][] = []
      const consumer = await startConsumer(kind, kafka, group, input, {
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary }: any) => {
          const messages = batch.messages
          atStart.push([index(messages[0]), dsm.currentContext()?.hash])
          // Handled concurrently: each in its own message's context.
          const hashes = await Promise.all(
            messages.map((m: any, j: number) =>
              withMessageContext(dsm, m, async () => {
                await sleep(j % 3)
                return dsm.currentContext()?.hash
              }),
            ),
          )
          messages.forEach((m: any, j: number) => {
            pinned.push([index(m), hashes[j]])
            remembered.push([index(m), contextOf(m)?.hash])
          })
          // The usual loop: handle, produce, resolve.
          for (const m of messages) {
            inLoop.push([index(m), dsm.currentContext()?.hash])
            await producer.send({ topic: output, messages: [{ key: 'k', value: m.value }] })
            resolveOffset(m.offset)
            await heartbeat()
          }
          atEnd.push([index(messages[messages.length - 1]), dsm.currentContext()?.hash])
          await commitOffsetsIfNecessary()
        },
      })
      await until(() => inLoop.length === COUNT, `${COUNT} messages handled`)

      for (const [what, seen] of [['start', atStart], ['end', atEnd], ['loop', inLoop], ['pinned', pinned], ['remembered', remembered]] as const) {
        for (const [i, hash] of seen) assert.equal(hash, consumed(i), `${what}: message ${i}`)
      }
      assert.deepEqual(inLoop.map(([i]) => i), Array.from({ length: COUNT }, (_, i) => i))

      // At the Agent: a consume point per message, and each produce hung off its own message.
      const lastOffset = COUNT - 1
      const commitTags = ['type:kafka_commit', `consumer_group:${group}`, `topic:${input}`, 'partition:0', ...(cid ? [`kafka_cluster_id:${cid}`] : [])]
      const produceBacklog = ['type:kafka_produce', `topic:${output}`, 'partition:0', ...(cid ? [`kafka_cluster_id:${cid}`] : [])]
      const produced = (i: number) => expectedHash(service, produceTags(output, cid), consumed(i))
      await flushUntil(
        [dsm],
        () => {
          const backlogs = backlogsOf(agent, service)
          return pointsOf(agent, service).length >= 2 * COUNT && backlogs.get(backlogKey(commitTags)) === COUNT && backlogs.get(backlogKey(produceBacklog)) === lastOffset
        },
      )
      const byHash = new Map(pointsOf(agent, service).map((p) => [p.Hash, p]))
      for (let i = 0; i < COUNT; i++) {
        const consume = byHash.get(consumed(i))
        assert.equal(consume?.ParentHash, upstream(i), `consume point of message ${i}`)
        assert.equal(decodeSketch(consume!.PathwayLatency).count, 1)
        // The parent's times are 2 s and 1 s old: the latencies measure from them.
        assert.ok(decodeSketch(consume!.PathwayLatency).quantile(0.5) >= 1.98)
        assert.ok(decodeSketch(consume!.EdgeLatency).quantile(0.5) >= 0.99)
        assert.equal(byHash.get(produced(i))?.ParentHash, consumed(i), `produce point after message ${i}`)
      }

      await Promise.all([consumer.disconnect(), producer.disconnect()])
      undo()
    })

    test(`${kind}: the messages of one send arrive with one context, made once for all of them`, async () => {
      const [topic, group, service] = [`batch-run-${kind}`, `batch-run-${kind}`, `batch-run-${kind}`]
      await createTopics(peer.brokers, [topic])
      const now = Date.now()
      const parent = new PathwayContext(0x1234, 0x5678, now - 2000, now - 1000)
      const header = encodePathwayContext(parent)
      const raw = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
      // Two sends, as a producer makes them: the messages of each carry the same header value.
      await raw.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ value: String(i), headers: { [PATHWAY_KEY]: header } })) })
      await raw.send({ topic, messages: [{ value: 'none' }, { value: 'none' }] })
      await raw.disconnect()

      const dsm = makeDataStreams(agent, service)
      dsms.push(dsm)
      const kafka = newKafka(kind, peer.brokers)
      const undo = kind === 'kafkajs' ? instrumentKafkaJs(kafka, dsm) : instrumentConfluent(kafka, dsm)
      const cid = kind === 'kafkajs' ? clusterId : undefined
      const batches: any[][] = []
      const consumer = await startConsumer(kind, kafka, group, topic, {
        eachBatch: async ({ batch }: any) => {
          batches.push([...batch.messages])
        },
      })
      await until(() => batches.flat().length === 22, '22 messages handled')
      const hash = expectedHash(service, consumeTags(group, topic, cid), parent.hash)
      // The messages with no header start a pathway: a run of their own.
      const fresh = expectedHash(service, consumeTags(group, topic, cid), 0n)
      const made = new Set<unknown>()
      for (const messages of batches) {
        const carried = messages.filter((m) => m.value.toString() !== 'none')
        for (const m of carried) assert.equal(contextOf(m), contextOf(carried[0]), 'one object for the run in a batch')
        for (const m of carried) made.add(contextOf(m))
        for (const m of messages.filter((m) => m.value.toString() === 'none')) assert.equal(contextOf(m)?.hash, fresh)
      }
      for (const ctx of made) assert.equal((ctx as PathwayContext | undefined)?.hash, hash)
      assert.ok(made.size < 20, `20 messages in ${batches.length} batches, ${made.size} contexts`)
      await flushUntil([dsm], () => pointsOf(agent, service).filter((p) => p.Hash === hash).reduce((n, p) => n + decodeSketch(p.PathwayLatency).count, 0) === 20)

      await consumer.disconnect()
      undo()
    })
  }
})
