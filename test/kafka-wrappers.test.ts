/**
 * The wrappers' promises to the application, checked on stand-in clients (what is checked here is
 * pathwise's side of the call, not a broker's): the handler's result and errors come back exactly
 * as without pathwise, a consumed message keeps its context for later, a failing send is not sent again, a failing pathwise step leaves the
 * messages and payloads as they were, and a kafkajs transaction's sends are the producer's
 * (the mock cluster cannot run kafkajs transactions).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { PATHWAY_KEY } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { instrumentKafkaJs, setHeaderInjection } from '../bindings/kafka/index.js'
import { contextOf, withMessageContext } from '../bindings/instrument/received-messages.js'
import { pathwayFromHeaders } from '../bindings/kafka/headers.js'
import { PathwayContext, decodePathwayContext, encodePathwayContext } from '../bindings/pathway/context.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { makeDataStreams } from './fixtures/kafka/setup.js'

interface Fake {
  kafka: { producer(): any; consumer(config: object): any }
  sent: any[]
  runConfig(): any
}

/** A client with kafkajs's surface that records what it is given. */
function fakeKafka(send: (record: any) => Promise<unknown> = async () => []): Fake {
  const sent: any[] = []
  let config: any
  const record = async (r: any) => {
    sent.push(r)
    return send(r)
  }
  return {
    sent,
    runConfig: () => config,
    kafka: {
      producer: () => ({
        send: record,
        sendBatch: record,
        transaction: async () => ({ send: record, sendBatch: record }),
      }),
      consumer: () => ({
        events: {},
        on() {},
        run: async (c: any) => void (config = c),
      }),
    },
  }
}

describe('Kafka wrappers', () => {
  let agent: TestAgent
  let dsm: DataStreams
  before(async () => {
    agent = await startAgent()
    dsm = makeDataStreams(agent, 'wrappers')
  })
  after(async () => {
    await dsm.shutdown()
    await agent.close()
  })

  test("the handler's results and errors come back unchanged", async () => {
    const fake = fakeKafka()
    instrumentKafkaJs(fake.kafka, dsm)
    const consumer = fake.kafka.consumer({ groupId: 'g' })
    const failure = new Error('handler failed')
    const result = { any: 'thing' }
    const payloads: any[] = []
    const message = { key: null, value: Buffer.from('v'), headers: { [PATHWAY_KEY]: Buffer.from('garbage') }, offset: '0' }

    await consumer.run({ eachMessage: async (p: any) => (payloads.push(p), result) })
    const payload = { topic: 't', partition: 0, message }
    assert.equal(await fake.runConfig().eachMessage(payload), result)
    assert.equal(payloads[0], payload)
    assert.deepEqual(message.headers[PATHWAY_KEY], Buffer.from('garbage'))

    await consumer.run({ eachMessage: async () => Promise.reject(failure) })
    await assert.rejects(fake.runConfig().eachMessage(payload), (err) => err === failure)
    await consumer.run({
      eachMessage: () => {
        throw failure
      },
    })
    assert.throws(() => fake.runConfig().eachMessage(payload), (err) => err === failure)

    const batch = { topic: 't', partition: 0, messages: [message] }
    const resolved: unknown[] = []
    await consumer.run({ eachBatch: async (p: any) => (payloads.push(p), p.resolveOffset('0'), Promise.reject(failure)) })
    await assert.rejects(fake.runConfig().eachBatch({ batch, resolveOffset: (o: unknown) => resolved.push(o) }), (err) => err === failure)
    assert.equal(payloads[1].batch, batch)
    assert.deepEqual(resolved, ['0'])
  })

  test('a message queued by eachMessage and handled later still has its context', async () => {
    const fake = fakeKafka()
    instrumentKafkaJs(fake.kafka, dsm)
    const queue: { message: object; ctx: unknown }[] = []
    await fake.kafka.consumer({ groupId: 'g' }).run({ eachMessage: async ({ message }: any) => void queue.push({ message, ctx: dsm.currentContext() }) })
    await fake.runConfig().eachMessage({ topic: 't', partition: 0, message: { value: Buffer.from('v'), offset: '0' } })
    const [{ message, ctx }] = queue
    assert.ok(ctx)
    assert.equal(contextOf(message), ctx)
    assert.equal(withMessageContext(dsm, message, () => dsm.currentContext()), ctx)
    // Invisible to the application.
    assert.deepEqual(Reflect.ownKeys(message), ['value', 'offset'])
    assert.deepStrictEqual(message, { value: Buffer.from('v'), offset: '0' })
    assert.equal(withMessageContext(dsm, {}, () => dsm.currentContext()), undefined)
  })

  test('messages sent together share one header value and, consumed in a batch, one context; a batch mixing pathways keeps each its own', async () => {
    const fake = fakeKafka()
    instrumentKafkaJs(fake.kafka, dsm)
    await fake.kafka.producer().send({ topic: 'a', messages: [{ value: '1' }, { value: '2', headers: { h: 'x' } }] })
    await fake.kafka.producer().send({ topic: 'b', messages: [{ value: '3' }] })
    const [one, two] = fake.sent[0].messages.map((m: any) => m.headers[PATHWAY_KEY])
    const three = fake.sent[1].messages[0].headers[PATHWAY_KEY]
    assert.equal(one, two)
    assert.notEqual(one, three)
    // the bytes of the base64 text, as Kafka carries them
    assert.ok(Buffer.isBuffer(one))
    assert.equal(decodePathwayContext(one)?.hash, decodePathwayContext(one.toString('latin1'))?.hash)
    assert.notEqual(decodePathwayContext(one), null)

    const current: unknown[] = []
    await fake.kafka.consumer({ groupId: 'g' }).run({
      eachBatch: async ({ batch, resolveOffset }: any) => {
        for (const m of batch.messages) {
          current.push(dsm.currentContext())
          resolveOffset(m.offset)
        }
      },
    })
    const message = (value: string, header: string | Uint8Array, offset: string) => ({ value: Buffer.from(value), headers: { [PATHWAY_KEY]: Buffer.from(header) }, offset })
    const messages = [message('1', one, '0'), message('2', two, '1'), message('3', three, '2'), message('4', one, '3')]
    await fake.runConfig().eachBatch({ batch: { topic: 'a', partition: 0, messages }, resolveOffset: () => {} })
    const [c1, c2, c3, c4] = messages.map((m) => contextOf(m)!)
    assert.equal(c1, c2)
    assert.notEqual(c1.hash, c3.hash)
    assert.notEqual(c3, c4)
    assert.equal(c4.hash, c1.hash)
    // Each message's context is current while it is handled.
    assert.deepEqual(current, [c1, c2, c3, c4])
  })

  test('the copies handed to the client keep every own key of the messages and headers, `__proto__` (from JSON.parse) included', async () => {
    const fake = fakeKafka()
    instrumentKafkaJs(fake.kafka, dsm)
    const symbol = Symbol('app')
    const plain = { value: 'v', [symbol]: 1 }
    const parsed = JSON.parse('{"value":"w","__proto__":{"polluted":true},"headers":{"__proto__":"x","a":"b"}}')
    const noHeaders = JSON.parse('{"value":"u","__proto__":{"polluted":true}}')
    await fake.kafka.producer().send({ topic: 'keys', messages: [plain, parsed, noHeaders] })
    const [a, b, c] = fake.sent[0].messages
    assert.deepEqual(Object.keys(a).sort(), ['headers', 'value'])
    assert.equal(a[symbol], 1)
    for (const copy of [b, c]) {
      assert.equal(Object.getPrototypeOf(copy), Object.prototype)
      assert.ok(Object.hasOwn(copy, '__proto__'))
      assert.equal(copy.polluted, undefined)
    }
    assert.deepEqual(Object.keys(b.headers).sort(), ['__proto__', 'a', PATHWAY_KEY].sort())
    assert.equal(Object.getPrototypeOf(b.headers), Object.prototype)
    // the caller's own objects are as they were
    assert.deepEqual(Object.keys(parsed.headers).sort(), ['__proto__', 'a'])
    assert.equal(plain.hasOwnProperty('headers'), false)
  })

  test('a header value equal to the last one decoded gives its context again; any other value is decoded anew', () => {
    const now = Date.now()
    const a = Buffer.from(encodePathwayContext(new PathwayContext(1, 2, now - 10, now - 5)))
    const b = Buffer.from(encodePathwayContext(new PathwayContext(3, 4, now - 10, now - 5)))
    const first = pathwayFromHeaders({ [PATHWAY_KEY]: a })!
    assert.equal(first.hashLo, 2)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: Buffer.from(a) }), first)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: b })!.hashLo, 4)
    // the same bytes object changed in place is read again
    const c = Buffer.from(b)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: c })!.hashLo, 4)
    a.copy(c)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: c })!.hashLo, 2)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: Buffer.from('garbage') }), null)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: [b, a] })!.hashLo, 2)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: encodePathwayContext(first) })!.hashLo, 2)
    const throwing = {
      get: () => {
        throw new Error('no')
      },
    }
    assert.equal(pathwayFromHeaders(new Proxy({}, throwing)), null)
    assert.equal(pathwayFromHeaders({ [PATHWAY_KEY]: new Proxy(a, throwing) }), null)
  })

  test('a send that fails for another reason fails unchanged and is not sent again', async () => {
    const failure = Object.assign(new Error('not leader'), { code: 6, type: 'NOT_LEADER_FOR_PARTITION' })
    const fake = fakeKafka(() => Promise.reject(failure))
    instrumentKafkaJs(fake.kafka, dsm)
    const producer = fake.kafka.producer()
    await assert.rejects(producer.send({ topic: 't', messages: [{ value: 'v' }] }), (err) => err === failure)
    assert.equal(fake.sent.length, 1)
  })

  test('a failing pathwise step leaves messages and payloads as they were, and warns once', async () => {
    const broken = Object.create(dsm, {
      node: {
        value: () => {
          throw new Error('broken')
        },
      },
    }) as DataStreams
    const warnings: string[] = []
    const warn = console.warn
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '))
    try {
      const fake = fakeKafka()
      instrumentKafkaJs(fake.kafka, broken)
      const record = { topic: 't', messages: [{ value: 'v', headers: { a: 'b' } }] }
      await fake.kafka.producer().send(record)
      await fake.kafka.producer().send(record)
      assert.equal(fake.sent[0], record)
      const consumer = fake.kafka.consumer({ groupId: 'g' })
      let handled: unknown
      await consumer.run({ eachMessage: async (p: unknown) => void (handled = p) })
      const payload = { topic: 't', partition: 0, message: { value: Buffer.from('v'), offset: '0' } }
      await fake.runConfig().eachMessage(payload)
      assert.equal(handled, payload)
      assert.equal(warnings.filter((w) => w.includes('produce failed')).length, 1, warnings.join('\n'))
    } finally {
      console.warn = warn
    }
  })

  test("a kafkajs transaction's sends get the header, and follow the producer's switch", async () => {
    const fake = fakeKafka()
    instrumentKafkaJs(fake.kafka, dsm)
    const producer = fake.kafka.producer()
    const tx = await producer.transaction()
    await tx.send({ topic: 't', messages: [{ value: 'a' }] })
    setHeaderInjection(producer, false)
    await tx.sendBatch({ topicMessages: [{ topic: 't', messages: [{ value: 'b' }] }] })
    assert.ok(fake.sent[0].messages[0].headers[PATHWAY_KEY])
    assert.equal(fake.sent[1].topicMessages[0].messages[0].headers, undefined)
  })
})
