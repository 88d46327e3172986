/**
 * Kafka near its size limits, and sends that fail, on the mock cluster with each API (kafkajs,
 * confluent KafkaJS, confluent node-rdkafka-style): every message the application sends without
 * pathwise is also delivered with pathwise, value and headers unchanged but for the pathway header.
 * - A confluent producer with a small `message.max.bytes` (librdkafka refuses bigger messages
 *   itself): the header is left out of the messages it would push past the limit.
 * - A broker that refuses a send for its size (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE): the
 *   caller's messages are sent once more without the header, and the topic's refused size is
 *   remembered (one refusal). The mock cluster enforces no broker-side size, so a test double
 *   stands between pathwise and the client: it answers as each client reports that refusal for a
 *   message with the header past a size, without sending.
 * - Headers pathwise must not walk (a header value that is an array of 2^32 - 1 holes) near the
 *   limit, in a header list and in a header object: the produce answers as the client's own, and
 *   pathwise reads none of it.
 * - An outage: sends that finally fail count in `dsm.stats.failedSends` and reach the Agent as
 *   `pathwise_failed_sends` backlogs: produced minus failed is what was delivered.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, describe, mock, test } from 'node:test'
import { PATHWAY_KEY } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentConfluent, instrumentKafkaJs } from '../bindings/kafka/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import { createTopics, kafkajs, makeDataStreams, newKafka, newProducer, newRdProducer, pointsOf, startConsumer, until, type ClientKind } from './fixtures/kafka/setup.js'

const require = createRequire(import.meta.url)
const { KafkaJSNonRetriableError } = require('kafkajs/src/errors')
const { createErrorFromCode } = require('kafkajs/src/protocol/error')
const LibrdKafkaError = require('@confluentinc/kafka-javascript/lib/error')
const { createKafkaJsErrorFromLibRdKafkaError } = require('@confluentinc/kafka-javascript/lib/kafkajs/_common.js')

type Api = ClientKind | 'rdkafka'
interface Received {
  value: string
  headers: Record<string, string>
}

/** Header values as strings, whichever shape the client hands them in. */
function headersOf(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (Array.isArray(headers)) for (const h of headers) for (const [k, v] of Object.entries(h)) out[k] = String(v)
  else if (headers) for (const [k, v] of Object.entries(headers)) out[k] = String(v)
  return out
}

const withoutPathway = ({ value, headers }: Received) => {
  const { [PATHWAY_KEY]: _pathway, ...rest } = headers
  return JSON.stringify([value, rest])
}

/** A node-rdkafka-style producer, instrumented for `dsm` if given, `double` put under pathwise; it sends to partition 0. */
async function rdProducer(brokers: string[], config: Record<string, unknown>, dsm?: DataStreams, double?: (client: any) => void) {
  const producer = await newRdProducer(brokers, config, (client) => {
    double?.(client)
    if (dsm !== undefined) instrumentConfluent(client, dsm)
  })
  return { send: (topic: string, value: string, headers?: Record<string, string>) => producer.send(topic, 0, value, headers), close: producer.close }
}

describe('Kafka size limits and failed sends', () => {
  let peer: KafkaPeer
  let agent: TestAgent
  const dsms: DataStreams[] = []
  let warn: ReturnType<typeof mock.method>

  before(async () => {
    ;[peer, agent] = await Promise.all([startKafka(), startAgent()])
    warn = mock.method(console, 'warn', () => {})
  })
  after(async () => {
    warn.mock.restore()
    await Promise.all(dsms.map((d) => d.shutdown()))
    await agent.close()
    await peer.stop()
  })

  function dataStreams(service: string): DataStreams {
    const dsm = makeDataStreams(agent, service)
    dsms.push(dsm)
    return dsm
  }

  /** A plain and an instrumented confluent KafkaJS-API producer, connected, with this `message.max.bytes`. */
  function confluentProducers(dsm: DataStreams, maxBytes: number): Promise<any[]> {
    const kafka = newKafka('confluent', peer.brokers)
    instrumentConfluent(kafka, dsm)
    return Promise.all(
      [newKafka('confluent', peer.brokers), kafka].map(async (k) => {
        const producer = k.producer({ 'linger.ms': 0, 'message.max.bytes': maxBytes })
        await producer.connect()
        return producer
      }),
    )
  }

  /** Reads `count` messages of `topic` with a plain kafkajs consumer. */
  async function readTopic(topic: string, count: number): Promise<Received[]> {
    const got: Received[] = []
    const consumer = await startConsumer('kafkajs', newKafka('kafkajs', peer.brokers), `${topic}-reader`, topic, {
      eachMessage: async ({ message }: any) => void got.push({ value: message.value.toString(), headers: headersOf(message.headers) }),
    })
    await until(() => got.length >= count, `${count} messages of ${topic}`)
    await consumer.disconnect()
    return got.sort((a, b) => a.value.length - b.value.length || a.value.localeCompare(b.value))
  }

  /** Sends the same messages through `send` with and without pathwise, and compares what arrived. */
  async function delivered(api: Api, values: string[], send: (topic: string, value: string) => Promise<void>, plainSend: (topic: string, value: string) => Promise<void>) {
    const [plain, instrumented] = [`${api}-plain-${values.length}`, `${api}-limits-${values.length}`]
    await createTopics(peer.brokers, [plain, instrumented])
    for (const value of values) await plainSend(plain, value)
    for (const value of values) await send(instrumented, value)
    const [without, withPathwise] = await Promise.all([readTopic(plain, values.length), readTopic(instrumented, values.length)])
    assert.deepEqual(withPathwise.map(withoutPathway), without.map(withoutPathway), `${api}: values and user headers arrive unchanged`)
    return withPathwise
  }

  test("confluent producers with message.max.bytes 1000: the header is left out of the messages it would push past it", async () => {
    // librdkafka counts 36 bytes + key + value + headers: a 930-byte value with key 'k' is 967, 1,018 with the header.
    const values = ['small', 'v'.repeat(930)]
    for (const api of ['confluent', 'rdkafka'] as const) {
      const dsm = dataStreams(`${api}-max-bytes`)
      let send: (topic: string, value: string) => Promise<void>
      let plainSend: (topic: string, value: string) => Promise<void>
      const closers: (() => Promise<void>)[] = []
      if (api === 'rdkafka') {
        const [plain, instrumented] = [await rdProducer(peer.brokers, { 'message.max.bytes': 1000 }), await rdProducer(peer.brokers, { 'message.max.bytes': 1000 }, dsm)]
        send = (topic, value) => instrumented.send(topic, value, { app: 'a' })
        plainSend = (topic, value) => plain.send(topic, value, { app: 'a' })
        closers.push(plain.close, instrumented.close)
      } else {
        const [plain, instrumented] = await confluentProducers(dsm, 1000)
        send = (topic, value) => instrumented.send({ topic, messages: [{ key: 'k', value, headers: { app: 'a' } }] })
        plainSend = (topic, value) => plain.send({ topic, messages: [{ key: 'k', value, headers: { app: 'a' } }] })
        closers.push(() => plain.disconnect(), () => instrumented.disconnect())
      }
      const got = await delivered(api, values, send, plainSend)
      assert.equal(got[0].headers[PATHWAY_KEY] !== undefined, true, `${api}: the small message carries the header`)
      assert.equal(got[1].headers[PATHWAY_KEY], undefined, `${api}: the large one goes without`)
      assert.equal(dsm.stats.contextsLeftOut, 1)
      await Promise.all(closers.map((close) => close()))
    }
    const said = warn.mock.calls.map((c) => String(c.arguments[0])).filter((w) => /message\.max\.bytes \(1000\)/.test(w))
    assert.equal(said.length, 2, said.join('\n'))
  })

  test('headers near message.max.bytes holding an array of 2^32 - 1 holes: each confluent API answers as without pathwise, and pathwise reads none of it', async () => {
    // Past the first million holes, an element that throws when read: a walk reaches it at once, where walking all took minutes.
    const holes = (reads: { n: number }) => {
      const a: unknown[] = []
      a.length = 2 ** 32 - 1
      Object.defineProperty(a, 1_000_001, {
        get: () => {
          reads.n++
          throw new Error('read past a million holes')
        },
      })
      return a
    }
    const outcome = async (produce: () => unknown) => {
      try {
        return `gave ${typeof (await produce())}`
      } catch (err) {
        return `failed: ${(err as Error).message}`
      }
    }
    const value = 'v'.repeat(930)
    for (const api of ['confluent', 'rdkafka'] as const) {
      const dsm = dataStreams(`${api}-holes`)
      const [plainReads, reads] = [{ n: 0 }, { n: 0 }]
      let expected: string
      let got: string
      if (api === 'rdkafka') {
        // The node-rdkafka-style API: a header list, one of whose headers is the array.
        const plain = await newRdProducer(peer.brokers, { 'message.max.bytes': 1000 })
        const instrumented = await newRdProducer(peer.brokers, { 'message.max.bytes': 1000 }, (client) => instrumentConfluent(client, dsm))
        const produce = (client: any, r: { n: number }) => () => client.produce('holes', 0, Buffer.from(value), 'k', Date.now(), undefined, [{ app: 'a' }, { big: holes(r) }])
        expected = await outcome(produce(plain.client, plainReads))
        got = await outcome(produce(instrumented.client, reads))
        await Promise.all([plain.close(), instrumented.close()])
      } else {
        // The KafkaJS API: a header object, one of whose values is the array (a repeated header).
        const [plain, instrumented] = await confluentProducers(dsm, 1000)
        const send = (producer: any, r: { n: number }) => () => producer.send({ topic: 'holes', messages: [{ key: 'k', value, headers: { app: 'a', big: holes(r) } }] })
        expected = await outcome(send(plain, plainReads))
        got = await outcome(send(instrumented, reads))
        await Promise.all([plain.disconnect(), instrumented.disconnect()])
      }
      assert.equal(got, expected, `${api}: the caller gets the client's own answer`)
      assert.equal(reads.n, plainReads.n, `${api}: pathwise read the holes (${reads.n} reads, the client alone ${plainReads.n})`)
    }
  })

  test('a broker that refuses a send for its size: sent again without the header, the size remembered (one refusal)', async () => {
    const SIZE = 600
    for (const api of ['kafkajs', 'confluent', 'rdkafka'] as Api[]) {
      const dsm = dataStreams(`${api}-refused`)
      let refusals = 0
      const refuses = (value: unknown, headers: unknown) => headersOf(headers)[PATHWAY_KEY] !== undefined && String(value).length > SIZE
      let send: (topic: string, value: string) => Promise<void>
      let plainSend: (topic: string, value: string) => Promise<void>
      let close: () => Promise<void>
      if (api === 'rdkafka') {
        const plain = await rdProducer(peer.brokers, {})
        const instrumented = await rdProducer(peer.brokers, {}, dsm, (client) => {
          const produce = client.produce
          client.produce = function (this: any, topic: string, _p: any, message: any, key: any, _t: any, opaque: any, headers: any) {
            if (!refuses(message, headers)) return produce.apply(this, arguments)
            refusals++
            // librdkafka's delivery report of a message the broker refused for its size.
            setImmediate(() => this.emit('delivery-report', LibrdKafkaError.create(10), { topic, partition: -1, offset: -1, key, opaque, size: message.length }))
            return true
          }
        })
        send = (topic, value) => instrumented.send(topic, value)
        plainSend = (topic, value) => plain.send(topic, value)
        close = async () => void (await Promise.all([plain.close(), instrumented.close()]))
      } else {
        const kafka = newKafka(api, peer.brokers)
        const create = kafka.producer
        kafka.producer = function (this: any, ...args: unknown[]) {
          const client = create.apply(this, args)
          const original = client.send
          client.send = async function (this: any, record: any) {
            if (!record.messages.some((m: any) => refuses(m.value, m.headers))) return original.call(this, record)
            refusals++
            if (api === 'confluent') throw createKafkaJsErrorFromLibRdKafkaError(LibrdKafkaError.create(10))
            const protocolError = createErrorFromCode(refusals === 1 ? 10 : 18)
            throw new KafkaJSNonRetriableError(protocolError, { cause: protocolError })
          }
          return client
        }
        ;(api === 'kafkajs' ? instrumentKafkaJs : instrumentConfluent)(kafka, dsm)
        const [plain, instrumented] = [await newProducer(api, newKafka(api, peer.brokers)), await newProducer(api, kafka)]
        send = (topic, value) => instrumented.send({ topic, messages: [{ key: 'k', value, partition: 0 }] })
        plainSend = (topic, value) => plain.send({ topic, messages: [{ key: 'k', value, partition: 0 }] })
        close = async () => void (await Promise.all([plain.disconnect(), instrumented.disconnect()]))
      }
      const values = ['tiny', 'r'.repeat(SIZE + 10), 's'.repeat(SIZE + 20)]
      const got = await delivered(api, values, send, plainSend)
      assert.equal(refusals, 1, `${api}: refused once, then the topic's size is known`)
      assert.deepEqual(
        got.map((m) => m.headers[PATHWAY_KEY] !== undefined),
        [true, false, false],
        `${api}: which messages carry the header`,
      )
      assert.equal(dsm.stats.contextsLeftOut, 2)
      assert.equal(dsm.stats.failedSends, 0)
      await close()
    }
  })

  test('an outage: the sends that finally fail count in stats.failedSends and at the Agent; produced minus failed is delivered', async () => {
    const own = await startKafka()
    const dsm = dataStreams('kafka-outage')
    const kafka = new kafkajs.Kafka({ brokers: own.brokers, logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 }, connectionTimeout: 300 })
    instrumentKafkaJs(kafka, dsm)
    const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner })
    await producer.connect()
    let delivered = 0
    for (let i = 0; i < 20; i++) {
      await producer.send({ topic: 'outage', messages: [{ value: `m${i}` }] })
      delivered++
    }
    await own.stop()
    let failed = 0
    for (let i = 0; i < 5; i++) {
      try {
        await producer.send({ topic: 'outage', messages: [{ value: `lost${i}` }, { value: `lost${i}b` }] })
        delivered += 2
      } catch {
        failed += 2
      }
    }
    await producer.disconnect().catch(() => {})
    assert.equal(failed, 10)
    assert.equal(dsm.stats.failedSends, failed)
    await dsm.flush()
    const points = pointsOf(agent, 'kafka-outage').filter((p) => p.EdgeTags.includes('topic:outage'))
    const produced = points.reduce((n, p) => n + decodeSketch(p.PayloadSize).count, 0)
    const reported = agent.payloads
      .filter((p) => p.Service === 'kafka-outage')
      .flatMap((p) => p.Stats.flatMap((b) => b.Backlogs))
      .filter((b) => b.Tags[0] === 'type:pathwise_failed_sends' && b.Tags.includes('topic:outage') && b.Tags.includes('transport:kafka'))
      .reduce((n, b) => n + Number(b.Value), 0)
    assert.equal(produced, 30)
    assert.equal(reported, failed)
    assert.equal(produced - reported, delivered)
  })
})
