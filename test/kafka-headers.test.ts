/**
 * The pathway header, for each API (kafkajs, confluent KafkaJS, confluent node-rdkafka-style),
 * end to end on the mock cluster, all messages to one partition so that their order is known:
 * - a message without a header, and one with a malformed header (delivered unchanged), start
 *   new pathways;
 * - header injection switched off (the `injectHeaders` option, `setHeaderInjection`,
 *   DD_KAFKA_CLIENT_PROPAGATION_ENABLED=false) adds no header, and checkpoints are still recorded;
 * - commits: automatic (node-rdkafka-style), by hand with commitOffsets (the KafkaJS APIs);
 * - a broker that refuses record headers: the message is sent once more without the header,
 *   none is lost or doubled, injection is off from then on, and one warning is logged.
 *   The mock cluster cannot refuse headers (librdkafka offers no setting for it), so a test
 *   double stands between pathwise and the client: on the first message with the header, it
 *   answers as each client reports Kafka's UNSUPPORTED_FOR_MESSAGE_FORMAT (43), without sending.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { PATHWAY_KEY, decodePathwayContext } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentConfluent, instrumentKafkaJs, setHeaderInjection, type KafkaInstrumentOptions } from '../bindings/kafka/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import {
  backlogKey,
  backlogsOf,
  clusterIdOf,
  confluent,
  consumeTags,
  createTopics,
  expectedHash,
  flushUntil,
  makeDataStreams,
  newKafka,
  newProducer,
  newRdProducer,
  pointsOf,
  produceTags,
  startConsumer,
  until,
} from './fixtures/kafka/setup.js'
import { decodeSketch } from './helpers/sketches.js'

const require = createRequire(import.meta.url)
const { KafkaJSNonRetriableError } = require('kafkajs/src/errors')
const { createErrorFromCode } = require('kafkajs/src/protocol/error')
const LibrdKafkaError = require('@confluentinc/kafka-javascript/lib/error')
const { createKafkaJsErrorFromLibRdKafkaError } = require('@confluentinc/kafka-javascript/lib/kafkajs/_common.js')

type Api = 'kafkajs' | 'confluent' | 'rdkafka'
type Headers = Map<string, string[]>

interface TestProducer {
  client: any
  send(value: string, headers?: Record<string, string>): Promise<void>
  close(): Promise<void>
}

/** Header values as strings, whichever shape the client hands them in. */
function normalize(headers: unknown): Headers {
  const out: Headers = new Map()
  const add = (key: string, value: unknown) => {
    for (const v of Array.isArray(value) ? value : [value]) out.set(key, [...(out.get(key) ?? []), String(v)])
  }
  if (Array.isArray(headers)) for (const h of headers) for (const [k, v] of Object.entries(h)) add(k, v)
  else if (headers) for (const [k, v] of Object.entries(headers)) add(k, v)
  return out
}

const hasHeader = (headers: unknown) => normalize(headers).has(PATHWAY_KEY)

/** What each client raises when a broker refuses headers, and a double of its send that does so once. */
function refuseOnce(api: Api, client: any): void {
  let refused = false
  if (api === 'rdkafka') {
    const produce = client.produce
    client.produce = function (this: any, topic: string, _partition: any, message: any, key: any, _timestamp: any, opaque: any, headers: any) {
      if (refused || !hasHeader(headers)) return produce.apply(this, arguments)
      refused = true
      // librdkafka's delivery report of a refused message.
      const report = { topic, partition: -1, offset: -1, key, opaque, size: message.length }
      setImmediate(() => this.emit('delivery-report', LibrdKafkaError.create(43), report))
      return true
    }
    return
  }
  const send = client.send
  client.send = async function (this: any, record: any) {
    if (refused || !record.messages.some((m: any) => hasHeader(m.headers))) return send.call(this, record)
    refused = true
    if (api === 'kafkajs') {
      const protocolError = createErrorFromCode(43)
      throw new KafkaJSNonRetriableError(protocolError, { cause: protocolError })
    }
    throw createKafkaJsErrorFromLibRdKafkaError(LibrdKafkaError.create(43))
  }
}

describe('the pathway header', () => {
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

  /** An instrumented producer of `api`; `double` puts the refusing double under pathwise. */
  async function producerOf(api: Api, dsm: DataStreams, options: KafkaInstrumentOptions, double = false): Promise<TestProducer> {
    if (api === 'rdkafka') {
      // murmur2, as kafkajs partitions: the raw messages and these land in one partition.
      const producer = await newRdProducer(peer.brokers, { partitioner: 'murmur2_random' }, (client) => {
        if (double) refuseOnce(api, client)
        instrumentConfluent(client, dsm, options)
      })
      return { client: producer.client, send: (value, headers) => producer.send(topicOf(api), null, value, headers), close: producer.close }
    }
    const kafka = newKafka(api, peer.brokers)
    if (double) {
      const create = kafka.producer
      kafka.producer = function (this: any, ...args: unknown[]) {
        const client = create.apply(this, args)
        refuseOnce(api, client)
        return client
      }
    }
    ;(api === 'kafkajs' ? instrumentKafkaJs : instrumentConfluent)(kafka, dsm, options)
    const client = await newProducer(api, kafka)
    return {
      client,
      send: (value, headers) => client.send({ topic: topicOf(api), messages: [{ key: 'k', value, headers }] }),
      close: () => client.disconnect(),
    }
  }

  const topicOf = (api: Api) => `headers-${api}`

  for (const api of ['kafkajs', 'confluent', 'rdkafka'] as Api[]) {
    test(`${api}: absent, malformed, switched off, refused`, async () => {
      const topic = topicOf(api)
      const [group, producerService, consumerService] = [`g-${topic}`, `p-${topic}`, `c-${topic}`]
      await createTopics(peer.brokers, [topic])
      const [dsmP, dsmC] = [makeDataStreams(agent, producerService), makeDataStreams(agent, consumerService)]
      dsms.push(dsmP, dsmC)
      const warnings: string[] = []
      const warn = console.warn
      console.warn = (...args: unknown[]) => void warnings.push(args.join(' '))
      const producers: TestProducer[] = []
      try {
        // m0 and m1 from a client pathwise does not know.
        const raw = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
        await raw.send({ topic, messages: [{ key: 'k', value: 'm0' }] })
        await raw.send({ topic, messages: [{ key: 'k', value: 'm1', headers: { [PATHWAY_KEY]: 'not base64!!', other: 'x' } }] })
        await raw.disconnect()

        const optionOff = await producerOf(api, dsmP, { injectHeaders: false })
        const switchedOff = await producerOf(api, dsmP, {})
        setHeaderInjection(switchedOff.client, false)
        // The variable is read with the rest of the configuration, when a DataStreams is created.
        process.env.DD_KAFKA_CLIENT_PROPAGATION_ENABLED = 'false'
        const dsmEnvOff = makeDataStreams(agent, producerService)
        delete process.env.DD_KAFKA_CLIENT_PROPAGATION_ENABLED
        dsms.push(dsmEnvOff)
        const envOff = await producerOf(api, dsmEnvOff, {})
        const on = await producerOf(api, dsmP, {})
        const refused = await producerOf(api, dsmP, {}, true)
        producers.push(optionOff, switchedOff, envOff, on, refused)
        await optionOff.send('m2', { other: 'y' })
        await switchedOff.send('m3')
        await envOff.send('m4')
        await on.send('m5', { other: 'z' })
        await refused.send('m6', { other: 'w' })
        await refused.send('m7')

        const cid = api === 'kafkajs' ? clusterId : undefined
        const committed = ['type:kafka_commit', `consumer_group:${group}`, `topic:${topic}`, 'partition:0', ...(cid ? [`kafka_cluster_id:${cid}`] : [])]
        const allCommitted = () => backlogsOf(agent, consumerService).get(backlogKey(committed)) === 8
        const seen: { value: string; headers: Headers; ctx: bigint | undefined }[] = []
        let stop: () => Promise<void>
        if (api === 'rdkafka') {
          const consumer = new confluent.KafkaConsumer(
            { 'bootstrap.servers': peer.brokers.join(','), 'group.id': group },
            { 'auto.offset.reset': 'earliest' },
          )
          instrumentConfluent(consumer, dsmC)
          await new Promise<void>((resolve, reject) => consumer.connect({}, (err: Error) => (err ? reject(err) : resolve())))
          consumer.on('data', (m: any) => seen.push({ value: m.value.toString(), headers: normalize(m.headers), ctx: dsmC.currentContext()?.hash }))
          consumer.subscribe([topic])
          consumer.consume()
          // Committed automatically (every 5 s): seen before disconnecting, as the commit a disconnect makes may come after it.
          stop = async () => {
            await flushUntil([dsmC], allCommitted, 20_000)
            await new Promise<void>((resolve) => consumer.disconnect(() => resolve()))
          }
        } else {
          const kafka = newKafka(api, peer.brokers)
          ;(api === 'kafkajs' ? instrumentKafkaJs : instrumentConfluent)(kafka, dsmC)
          // Committed by hand, with commitOffsets.
          const consumer = await startConsumer(
            api,
            kafka,
            group,
            topic,
            {
              eachMessage: async ({ message }: any) => {
                seen.push({ value: message.value.toString(), headers: normalize(message.headers), ctx: dsmC.currentContext()?.hash })
              },
            },
            false,
          )
          stop = async () => {
            await consumer.commitOffsets([{ topic, partition: 0, offset: '8' }])
            await consumer.disconnect()
          }
        }
        await until(() => seen.length >= 8, '8 messages')
        await stop()

        // Nothing lost, nothing doubled, in order.
        assert.deepEqual(seen.map((s) => s.value), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'])
        const fresh = expectedHash(consumerService, consumeTags(group, topic, cid), 0n)
        const produced = expectedHash(producerService, produceTags(topic, cid), 0n)
        const [m0, m1, m2, m3, m4, m5, m6, m7] = seen
        assert.equal(m0.headers.size, 0)
        // The malformed header reaches the handler as it was sent.
        assert.deepEqual(m1.headers, new Map([[PATHWAY_KEY, ['not base64!!']], ['other', ['x']]]))
        assert.deepEqual(m2.headers, new Map([['other', ['y']]]))
        for (const m of [m0, m1, m2, m3, m4]) assert.equal(m.ctx, fresh, `${m.value} starts a new pathway`)
        for (const m of [m3, m4, m7]) assert.equal(m.headers.size, 0, `${m.value} carries no header`)
        assert.equal(decodePathwayContext(m5.headers.get(PATHWAY_KEY)![0])?.hash, produced)
        assert.equal(m5.ctx, expectedHash(consumerService, consumeTags(group, topic, cid), produced))
        assert.deepEqual(m6.headers, new Map([['other', ['w']]]))
        assert.equal(m6.ctx, fresh)
        assert.equal(warnings.filter((w) => w.includes('refused record headers')).length, 1, warnings.join('\n'))

        // Checkpoints are recorded with or without the header: m2..m7, m6 once. All commits are seen.
        await flushUntil([dsmP, dsmEnvOff, dsmC], () => pointsOf(agent, producerService).some((p) => p.Hash === produced) && allCommitted())
        // m4's checkpoint is dsmEnvOff's: a point of its own payload.
        const points = pointsOf(agent, producerService).filter((p) => p.Hash === produced)
        assert.equal(points.reduce((n, point) => n + decodeSketch(point.PayloadSize).count, 0), 6)
      } finally {
        console.warn = warn
        await Promise.all(producers.map((p) => p.close()))
      }
    })
  }
})
