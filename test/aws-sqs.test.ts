/**
 * SQS through fauxqs (an emulator speaking the SQS wire protocol) with the middleware mode:
 * services A, B and C each have their own DataStreams and client; their points reach a real HTTP
 * Agent stand-in. Covers the hash chain A -> B -> C (single and batch sends), payload sizes, an
 * existing `_datadog`, the 10-attribute limit, trimming `_datadog` the caller did not ask for,
 * the receive -> send hand-off rule, and calls that go on when pathwise fails.
 */
import assert from 'node:assert/strict'
import { after, before, describe, mock, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs'
import { PATHWAY_KEY, PathwayContext, createDataStreams, decodePathwayContext, encodePathwayContext, type DataStreams } from '../bindings/index.js'
import { pathwiseSqs } from '../bindings/aws/index.js'
import { contextOf, withMessageContext } from '../bindings/instrument/received-messages.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startSqs, sqsClientConfig, type SqsPeer } from './peers/sqs.js'
import { ENV, expectedHash, waitForPoint } from './fixtures/aws/pathways.js'

const out = (queue: string) => ['direction:out', `topic:${queue}`, 'type:sqs']
const into = (queue: string) => ['direction:in', `topic:${queue}`, 'type:sqs']

/** The context a received message carries in its `_datadog` attribute. */
function carried(message: Message): PathwayContext {
  const json = JSON.parse(message.MessageAttributes?._datadog?.StringValue ?? '{}') as Record<string, string>
  const ctx = decodePathwayContext(json[PATHWAY_KEY])
  assert.ok(ctx, `no pathway context in ${JSON.stringify(message.MessageAttributes)}`)
  return ctx
}

describe('SQS', () => {
  let agent: TestAgent
  let peer: SqsPeer
  const open: DataStreams[] = []
  const clients: SQSClient[] = []
  let queueCount = 0

  /** A service: its DataStreams and an instrumented client. */
  function service(name: string): { dsm: DataStreams; sqs: SQSClient } {
    const dsm = createDataStreams({ enabled: true, service: name, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const sqs = new SQSClient(sqsClientConfig(peer.endpoint))
    sqs.middlewareStack.use(pathwiseSqs(dsm))
    open.push(dsm)
    clients.push(sqs)
    return { dsm, sqs }
  }

  function plainClient(): SQSClient {
    const sqs = new SQSClient(sqsClientConfig(peer.endpoint))
    clients.push(sqs)
    return sqs
  }

  async function queue(): Promise<{ name: string; url: string }> {
    const name = `q${++queueCount}`
    const { QueueUrl } = await plainClient().send(new CreateQueueCommand({ QueueName: name }))
    return { name, url: QueueUrl! }
  }

  /** Receives until `count` messages have come (fauxqs may split them over several receives). */
  async function receiveAll(sqs: SQSClient, input: ReceiveMessageCommandInput, count: number): Promise<Message[]> {
    const messages: Message[] = []
    while (messages.length < count) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ MaxNumberOfMessages: 10, WaitTimeSeconds: 1, ...input }))
      messages.push(...(Messages ?? []))
    }
    return messages
  }

  before(async () => {
    ;[agent, peer] = await Promise.all([startAgent(), startSqs()])
  })
  after(async () => {
    await Promise.all(open.map((d) => d.shutdown()))
    for (const client of clients) client.destroy()
    await Promise.all([agent.close(), peer.stop()])
  })

  test('A sends (single and batch), B receives and sends on, C receives: the hash chain reaches the Agent', async () => {
    const a = service('sqs-a')
    const b = service('sqs-b')
    const c = service('sqs-c')
    const q1 = await queue()
    const q2 = await queue()

    await a.sqs.send(new SendMessageCommand({ QueueUrl: q1.url, MessageBody: 'one' }))
    await a.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: q1.url,
        Entries: [
          { Id: '1', MessageBody: 'two' },
          { Id: '2', MessageBody: 'three', MessageAttributes: { kind: { DataType: 'String', StringValue: 'x' } } },
        ],
      }),
    )
    const received = await receiveAll(b.sqs, { QueueUrl: q1.url }, 3)
    assert.deepEqual(received.map((m) => m.Body).sort(), ['one', 'three', 'two'])
    await b.sqs.send(new SendMessageCommand({ QueueUrl: q2.url, MessageBody: 'on' }))
    const [final] = await receiveAll(c.sqs, { QueueUrl: q2.url }, 1)
    assert.equal(final.Body, 'on')

    const hA = expectedHash('sqs-a', out(q1.name), 0n)
    const hBin = expectedHash('sqs-b', into(q1.name), hA)
    const hBout = expectedHash('sqs-b', out(q2.name), hBin)
    const hC = expectedHash('sqs-c', into(q2.name), hBout)
    await Promise.all([a.dsm.flush(), b.dsm.flush(), c.dsm.flush()])

    const pa = await waitForPoint(agent, 'sqs-a', hA)
    assert.equal(pa.ParentHash, 0n)
    assert.deepEqual(pa.EdgeTags, out(q1.name))
    const sizes = decodeSketch(pa.PayloadSize)
    assert.equal(sizes.count, 3)
    // body + `_datadog` + "String" + {"dd-pathway-ctx-base64":"<28 characters>"}
    const carrier = 8 + 6 + 56
    assert.ok(Math.abs(sizes.quantile(0) - (3 + carrier)) <= 1, `smallest payload ${sizes.quantile(0)}`)
    // the batch's second message: its `kind` attribute counts too (4 + 6 + 1 bytes)
    assert.ok(Math.abs(sizes.quantile(1) - (5 + carrier + 11)) <= 1, `largest payload ${sizes.quantile(1)}`)

    const pbIn = await waitForPoint(agent, 'sqs-b', hBin)
    assert.equal(pbIn.ParentHash, hA)
    assert.deepEqual(pbIn.EdgeTags, into(q1.name))
    assert.equal(decodeSketch(pbIn.PayloadSize).count, 3)
    const pbOut = await waitForPoint(agent, 'sqs-b', hBout)
    assert.equal(pbOut.ParentHash, hBin)
    assert.deepEqual(pbOut.EdgeTags, out(q2.name))
    const pc = await waitForPoint(agent, 'sqs-c', hC)
    assert.equal(pc.ParentHash, hBout)
    assert.deepEqual(pc.EdgeTags, into(q2.name))
    // latencies are measured from A's send through B to C
    assert.ok(decodeSketch(pc.PathwayLatency).quantile(1) >= decodeSketch(pc.EdgeLatency).quantile(1))
  })

  test("an existing `_datadog` keeps its other keys, and the caller's input is left as written", async () => {
    const a = service('sqs-keep-a')
    const c = service('sqs-keep-c')
    const q = await queue()
    const traceHeaders = { 'x-datadog-trace-id': '123', 'x-datadog-parent-id': '456', [PATHWAY_KEY]: 'stale' }
    const input = {
      QueueUrl: q.url,
      MessageBody: 'traced',
      MessageAttributes: {
        _datadog: { DataType: 'String', StringValue: JSON.stringify(traceHeaders) },
        color: { DataType: 'String', StringValue: 'blue' },
      },
    }
    const written = structuredClone(input)
    await a.sqs.send(new SendMessageCommand(input))
    assert.deepEqual(input, written)

    const [message] = await receiveAll(c.sqs, { QueueUrl: q.url, MessageAttributeNames: ['All'] }, 1)
    assert.deepEqual(message.MessageAttributes?.color, { DataType: 'String', StringValue: 'blue' })
    const json = JSON.parse(message.MessageAttributes!._datadog.StringValue!) as Record<string, string>
    assert.equal(json['x-datadog-trace-id'], '123')
    assert.equal(json['x-datadog-parent-id'], '456')
    assert.equal(carried(message).hash, expectedHash('sqs-keep-a', out(q.name), 0n))
  })

  test('a message with 10 attributes arrives unchanged, still counts, warns once per queue, and B starts a new pathway', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const a = service('sqs-full-a')
      const b = service('sqs-full-b')
      const q = await queue()
      const attributes: Record<string, MessageAttributeValue> = {}
      for (let i = 0; i < 10; i++) attributes[`a${i}`] = { DataType: 'String', StringValue: `v${i}` }
      await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'full', MessageAttributes: attributes }))
      await a.sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: [{ Id: 'x', MessageBody: 'full', MessageAttributes: attributes }] }))

      const messages = await receiveAll(b.sqs, { QueueUrl: q.url, MessageAttributeNames: ['All'] }, 2)
      for (const message of messages) assert.deepEqual(message.MessageAttributes, attributes)
      const warnings = warn.mock.calls.map((call) => String(call.arguments[0])).filter((m) => m.includes(q.name))
      assert.equal(warnings.length, 1)
      assert.match(warnings[0], /10 message attributes/)

      const hA = expectedHash('sqs-full-a', out(q.name), 0n)
      const hB = expectedHash('sqs-full-b', into(q.name), 0n)
      await Promise.all([a.dsm.flush(), b.dsm.flush()])
      const pa = await waitForPoint(agent, 'sqs-full-a', hA)
      assert.equal(decodeSketch(pa.PayloadSize).count, 2)
      const pb = await waitForPoint(agent, 'sqs-full-b', hB)
      assert.equal(pb.ParentHash, 0n)
      assert.equal(decodeSketch(pb.PayloadSize).count, 2)
    } finally {
      warn.mock.restore()
    }
  })

  test('a caller who did not ask for `_datadog` does not get it back, and B still links to A', async () => {
    const a = service('sqs-trim-a')
    const b = service('sqs-trim-b')
    const q = await queue()
    const plain = plainClient()
    const foo = { foo: { DataType: 'String', StringValue: 'bar' } }
    // What SQS answers for a message with just `foo`: the digest a receive of `foo` alone carries.
    const reference = await plain.send(new SendMessageCommand({ QueueUrl: (await queue()).url, MessageBody: 'ref', MessageAttributes: foo }))
    await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'no names', MessageAttributes: foo }))
    await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'foo only', MessageAttributes: foo }))

    const input: ReceiveMessageCommandInput = { QueueUrl: q.url, MaxNumberOfMessages: 1 }
    const [first] = await receiveAll(b.sqs, input, 1)
    assert.deepEqual(input, { QueueUrl: q.url, MaxNumberOfMessages: 1 })
    assert.equal('MessageAttributes' in first, false)
    assert.equal('MD5OfMessageAttributes' in first, false)

    const [second] = await receiveAll(b.sqs, { QueueUrl: q.url, MessageAttributeNames: ['foo'] }, 1)
    assert.deepEqual(second.MessageAttributes, foo)
    assert.equal(second.MD5OfMessageAttributes, reference.MD5OfMessageAttributes)

    const hA = expectedHash('sqs-trim-a', out(q.name), 0n)
    for (const message of [first, second]) assert.equal(contextOf(message)?.hash, expectedHash('sqs-trim-b', into(q.name), hA))
  })

  test('after `await receive`, a send links to the last message received; withMessageContext to the one given', async () => {
    const a = service('sqs-rule-a')
    const x = service('sqs-rule-x')
    const b = service('sqs-rule-b')
    const c = service('sqs-rule-c')
    const q = await queue()
    const next = await queue()
    // Two pathways: one from A, one from X.
    await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'from a' }))
    await x.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'from x' }))

    const { Messages } = await b.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))
    assert.equal(Messages?.length, 2, 'one receive returns both messages')
    const [firstMessage, lastMessage] = Messages!
    const consumed = (m: Message) => {
      const producer = m.Body === 'from a' ? 'sqs-rule-a' : 'sqs-rule-x'
      return expectedHash('sqs-rule-b', into(q.name), expectedHash(producer, out(q.name), 0n))
    }
    assert.equal(contextOf(firstMessage)?.hash, consumed(firstMessage))
    assert.equal(contextOf(lastMessage)?.hash, consumed(lastMessage))

    await b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'implicit' }))
    // An empty receive changes nothing.
    await b.sqs.send(new ReceiveMessageCommand({ QueueUrl: (await queue()).url, WaitTimeSeconds: 0 }))
    await b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'after an empty receive' }))
    await withMessageContext(b.dsm, firstMessage, () =>
      b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'explicit first' })),
    )
    // A context made current after the receive wins.
    const elsewhere = contextOf(firstMessage)!
    await b.dsm.runWithContext(elsewhere, () => b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'run with' })))

    const got = await receiveAll(c.sqs, { QueueUrl: next.url, MessageAttributeNames: ['_datadog'] }, 4)
    const parentOf = (body: string) => carried(got.find((m) => m.Body === body)!).hash
    const sentAfter = (m: Message) => expectedHash('sqs-rule-b', out(next.name), consumed(m))
    assert.equal(parentOf('implicit'), sentAfter(lastMessage))
    assert.equal(parentOf('after an empty receive'), sentAfter(lastMessage))
    assert.equal(parentOf('explicit first'), sentAfter(firstMessage))
    assert.equal(parentOf('run with'), sentAfter(firstMessage))
  })

  test("a receive made in a helper after the helper's own await does not reach the helper's caller", async () => {
    const a = service('sqs-helper-a')
    const b = service('sqs-helper-b')
    const c = service('sqs-helper-c')
    const [q, next] = [await queue(), await queue()]
    await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'a' }))
    const helper = async () => {
      await sleep(1)
      const { Messages } = await b.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, WaitTimeSeconds: 1 }))
      return Messages!
    }
    // Taken by index: walking the array (for...of, destructuring) would make its message's context current.
    const message = (await helper())[0]
    await b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'unlinked' }))
    await withMessageContext(b.dsm, message, () => b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: 'linked' })))

    const got = await receiveAll(c.sqs, { QueueUrl: next.url, MessageAttributeNames: ['All'] }, 2)
    const parentOf = (body: string) => carried(got.find((m) => m.Body === body)!).hash
    assert.equal(parentOf('unlinked'), expectedHash('sqs-helper-b', out(next.name), 0n))
    const consumed = expectedHash('sqs-helper-b', into(q.name), expectedHash('sqs-helper-a', out(q.name), 0n))
    assert.equal(parentOf('linked'), expectedHash('sqs-helper-b', out(next.name), consumed))
  })

  test('concurrent flows each hand their own receive to their next send', async () => {
    const a = service('sqs-flows-a')
    const x = service('sqs-flows-x')
    const b = service('sqs-flows-b')
    const c = service('sqs-flows-c')
    const [qa, qx, next] = [await queue(), await queue(), await queue()]
    await a.sqs.send(new SendMessageCommand({ QueueUrl: qa.url, MessageBody: 'a' }))
    await x.sqs.send(new SendMessageCommand({ QueueUrl: qx.url, MessageBody: 'x' }))

    const relay = async (from: string, body: string, pause: number) => {
      await receiveAll(b.sqs, { QueueUrl: from }, 1)
      await sleep(pause)
      await b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: body }))
    }
    // Interleaved: the flow that receives first sends last.
    await Promise.all([relay(qa.url, 'relayed a', 150), relay(qx.url, 'relayed x', 0)])

    const got = await receiveAll(c.sqs, { QueueUrl: next.url, MessageAttributeNames: ['.*'] }, 2)
    const via = (producer: string, from: string) =>
      expectedHash('sqs-flows-b', out(next.name), expectedHash('sqs-flows-b', into(from), expectedHash(producer, out(from), 0n)))
    assert.equal(carried(got.find((m) => m.Body === 'relayed a')!).hash, via('sqs-flows-a', qa.name))
    assert.equal(carried(got.find((m) => m.Body === 'relayed x')!).hash, via('sqs-flows-x', qx.name))
  })

  test("MessageAttributeNames ['_dat.*'] and ['*']: the context is read, and `_datadog` handed back, as SQS selects it by prefix", async () => {
    const a = service('sqs-prefix-a')
    const b = service('sqs-prefix-b')
    const q = await queue()
    for (const body of ['one', 'two']) await a.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body, MessageAttributes: { data: { DataType: 'String', StringValue: 'd' } } }))
    const hA = expectedHash('sqs-prefix-a', out(q.name), 0n)
    // SQS reads `p.*` as "every name that starts with p" (AWS: "Hel.*" returns "Hello" and "Help.Me"); fauxqs as "starts with p.".
    for (const names of [['_dat.*'], ['*']]) {
      const input: ReceiveMessageCommandInput = { QueueUrl: q.url, MaxNumberOfMessages: 1, MessageAttributeNames: names }
      const [m] = await receiveAll(b.sqs, input, 1)
      assert.deepEqual(input.MessageAttributeNames, names, 'the caller\'s input is left as written')
      assert.equal(contextOf(m)?.hash, expectedHash('sqs-prefix-b', into(q.name), hA), names.join())
      assert.equal(carried(m).hash, hA, '`_datadog` comes back, as SQS returns it for these names')
    }
  })

  test('receive ten, forward each: for...of, forEach and map link each send to its message; an indexed loop warns once', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const b = service('sqs-loop-b')
      const c = service('sqs-loop-c')
      const plain = plainClient()
      const upstream = (i: number) => (0xabcn << 32n) | BigInt(i + 1)
      const now = Date.now()
      // Ten messages, each with a context of its own (written by a client pathwise does not know).
      const feed = async (url: string) => {
        for (let i = 0; i < 10; i++) {
          const ctx = encodePathwayContext(new PathwayContext(0xabc, i + 1, now - 2000, now - 1000))
          await plain.send(
            new SendMessageCommand({ QueueUrl: url, MessageBody: String(i), MessageAttributes: { _datadog: { DataType: 'String', StringValue: JSON.stringify({ [PATHWAY_KEY]: ctx }) } } }),
          )
        }
      }
      const loops: Record<string, (messages: Message[], forward: (m: Message) => Promise<unknown>) => Promise<void>> = {
        'for...of': async (messages, forward) => {
          for (const m of messages) await forward(m)
        },
        forEach: async (messages, forward) => {
          const sends: Promise<unknown>[] = []
          messages.forEach((m) => sends.push(forward(m)))
          await Promise.all(sends)
        },
        map: async (messages, forward) => {
          await Promise.all(messages.map((m) => forward(m)))
        },
        indexed: async (messages, forward) => {
          for (let i = 0; i < messages.length; i++) await forward(messages[i])
        },
      }
      const right: Record<string, number> = {}
      for (const [name, loop] of Object.entries(loops)) {
        const [q, next] = [await queue(), await queue()]
        await feed(q.url)
        let received = 0
        while (received < 10) {
          const { Messages = [] } = await b.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))
          received += Messages.length
          await loop(Messages, (m) => b.sqs.send(new SendMessageCommand({ QueueUrl: next.url, MessageBody: m.Body })))
        }
        const got = await receiveAll(c.sqs, { QueueUrl: next.url, MessageAttributeNames: ['_datadog'] }, 10)
        const via = (i: number) => expectedHash('sqs-loop-b', out(next.name), expectedHash('sqs-loop-b', into(q.name), upstream(i)))
        right[name] = got.filter((m) => carried(m).hash === via(Number(m.Body))).length
      }
      const { indexed, ...walked } = right
      assert.deepEqual(walked, { 'for...of': 10, forEach: 10, map: 10 })
      // An indexed loop: every send links to the last message of the receive, and one warning says so, with the fix.
      assert.ok(indexed < 10, `indexed: ${indexed}`)
      const said = warn.mock.calls.map((call) => String(call.arguments[0])).filter((w) => w.includes('several sends after one receive'))
      assert.equal(said.length, 1)
      assert.match(said[0], /withMessageContext\(dsm, message, fn\)/)
    } finally {
      warn.mock.restore()
    }
  })

  test('a client that caches its middleware is instrumented on every call', async () => {
    const a = service('sqs-cached-a')
    const c = service('sqs-cached-c')
    const sqs = new SQSClient({ ...sqsClientConfig(peer.endpoint), cacheMiddleware: true })
    clients.push(sqs)
    sqs.middlewareStack.use(pathwiseSqs(a.dsm))
    const q = await queue()
    for (const body of ['one', 'two', 'three']) await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    const got = await receiveAll(c.sqs, { QueueUrl: q.url, MessageAttributeNames: ['_datadog'] }, 3)
    for (const message of got) assert.equal(carried(message).hash, expectedHash('sqs-cached-a', out(q.name), 0n))
  })

  test('when pathwise fails inside, the calls go on and return what they would have', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const boom = () => {
        throw new Error('boom')
      }
      const broken = { enabled: true, node: boom, setCheckpoint: boom, currentContext: boom, runWithContext: boom } as unknown as DataStreams
      const sqs = new SQSClient(sqsClientConfig(peer.endpoint))
      clients.push(sqs)
      sqs.middlewareStack.use(pathwiseSqs(broken))
      const q = await queue()
      const sent = await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'still sent' }))
      assert.ok(sent.MessageId)
      const batch = await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: [{ Id: '1', MessageBody: 'batch too' }] }))
      assert.equal(batch.Successful?.length, 1)
      const messages = await receiveAll(sqs, { QueueUrl: q.url }, 2)
      assert.deepEqual(messages.map((m) => m.Body).sort(), ['batch too', 'still sent'])
      for (const m of messages) assert.equal('MessageAttributes' in m, false)
      // Errors of the call itself reach the caller unchanged.
      const missing = new SendMessageCommand({ QueueUrl: `${q.url}-missing`, MessageBody: 'x' })
      const expected = (await plainClient().send(missing).catch((err: unknown) => err)) as Error
      const actual = (await sqs.send(missing).catch((err: unknown) => err)) as Error
      assert.ok(expected instanceof Error)
      assert.equal(actual.name, expected.name)
      assert.equal(actual.message, expected.message)
      assert.ok(warn.mock.calls.length > 0)
      const messagesWarned = warn.mock.calls.map((call) => String(call.arguments[0]))
      assert.equal(new Set(messagesWarned).size, messagesWarned.length, 'each failure is reported once')
    } finally {
      warn.mock.restore()
    }
  })
})
