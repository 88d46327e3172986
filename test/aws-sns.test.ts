/**
 * SNS to SQS through fauxqs (an emulator speaking both wire protocols): service A publishes with
 * the real @aws-sdk/client-sns (Publish and PublishBatch), service B receives with the real
 * @aws-sdk/client-sqs from two subscriptions of the topic, one with raw delivery and one without
 * (the body is then SNS's notification JSON). Covers the `_datadog` Binary attribute as it
 * travels both ways, the hash chain publish -> consume at a real HTTP Agent stand-in, payload
 * sizes, the caller's input left as written, the 10-attribute rule, the size limit, the automatic
 * mode (the module as the require hook hands it over), and calls that go on when pathwise fails.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import {
  CreateTopicCommand,
  PublishBatchCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
  type MessageAttributeValue,
} from '@aws-sdk/client-sns'
import { CreateQueueCommand, GetQueueAttributesCommand, type Message } from '@aws-sdk/client-sqs'
import { PATHWAY_KEY, decodePathwayContext, type DataStreams, type PathwayContext } from '../bindings/index.js'
import { pathwiseSns } from '../bindings/aws/index.js'
import { snsInstrumentation } from '../bindings/aws/sns.js'
import { patchModule } from '../bindings/register/auto.js'
import { contextOf } from '../bindings/instrument/received-messages.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startSqs, sqsClientConfig, type SqsPeer } from './peers/sqs.js'
import { expectedHash, waitForPoint } from './fixtures/aws/pathways.js'
import { TestServices, brokenDataStreams, payloadSizes, receiveAll } from './fixtures/aws/services.js'
import { ddTraceCarrier } from './fixtures/aws/dd-trace-carrier.js'

const published = (topicArn: string) => ['direction:out', `topic:${topicArn}`, 'type:sns']
const into = (queue: string) => ['direction:in', `topic:${queue}`, 'type:sqs']

/** The context in a carrier's JSON text. */
function contextIn(json: string): PathwayContext {
  const ctx = decodePathwayContext((JSON.parse(json) as Record<string, string>)[PATHWAY_KEY])
  assert.ok(ctx, `no pathway context in ${json}`)
  return ctx
}

/** The `_datadog` attribute of a notification (raw delivery off), as SNS wrote it into the SQS body. */
function envelopeAttribute(message: Message): { Type: string; Value: string } {
  const notification = JSON.parse(message.Body!) as { Type: string; MessageAttributes?: Record<string, { Type: string; Value: string }> }
  assert.equal(notification.Type, 'Notification')
  const attribute = notification.MessageAttributes?._datadog
  assert.ok(attribute, `no _datadog in ${message.Body}`)
  return attribute
}

describe('SNS to SQS', () => {
  let agent: TestAgent
  let peer: SqsPeer
  const services = new TestServices(() => agent.url, () => peer.endpoint)
  const dataStreams = (name: string) => services.dataStreams(name)
  const sqsClient = (dsm?: DataStreams) => services.sqs(dsm)
  let count = 0

  function snsClient(dsm?: DataStreams): SNSClient {
    const sns = services.client(new SNSClient(sqsClientConfig(peer.endpoint)))
    if (dsm !== undefined) sns.middlewareStack.use(pathwiseSns(dsm))
    return sns
  }

  /** A topic with two SQS subscriptions: one with raw delivery, one without. */
  async function topic(): Promise<{ arn: string; raw: { name: string; url: string }; enveloped: { name: string; url: string } }> {
    const n = ++count
    const sns = snsClient()
    const sqs = sqsClient()
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `t${n}` }))
    const queue = async (name: string, raw: boolean) => {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }))
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }))
      await sns.send(
        new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn, Attributes: raw ? { RawMessageDelivery: 'true' } : {} }),
      )
      return { name, url: QueueUrl! }
    }
    return { arn: TopicArn!, raw: await queue(`raw${n}`, true), enveloped: await queue(`env${n}`, false) }
  }

  before(async () => {
    ;[agent, peer] = await Promise.all([startAgent(), startSqs()])
  })
  after(async () => {
    await services.close()
    await Promise.all([agent.close(), peer.stop()])
  })

  test('A publishes (Publish and PublishBatch), B receives from a raw and an enveloped subscription: the hash chain reaches the Agent', async () => {
    const a = dataStreams('sns-a')
    const b = dataStreams('sns-b')
    const sns = snsClient(a)
    const sqs = sqsClient(b)
    const t = await topic()

    const single = { TopicArn: t.arn, Message: 'one' }
    const batch = {
      TopicArn: t.arn,
      PublishBatchRequestEntries: [
        { Id: '1', Message: 'two' },
        { Id: '2', Message: 'three', MessageAttributes: { kind: { DataType: 'String', StringValue: 'x' } } },
      ],
    }
    const written = structuredClone([single, batch])
    await sns.send(new PublishCommand(single))
    const { Successful } = await sns.send(new PublishBatchCommand(batch))
    assert.equal(Successful?.length, 2)
    assert.deepEqual([single, batch], written, "the caller's input is left as written")

    const raw = await receiveAll(sqs, { QueueUrl: t.raw.url }, 3)
    const enveloped = await receiveAll(sqs, { QueueUrl: t.enveloped.url }, 3)
    assert.deepEqual(raw.map((m) => m.Body).sort(), ['one', 'three', 'two'])
    assert.deepEqual(enveloped.map((m) => (JSON.parse(m.Body!) as { Message: string }).Message).sort(), ['one', 'three', 'two'])
    // The caller asked for no attributes: the raw messages come without the `_datadog` pathwise asked for.
    for (const m of raw) assert.equal('MessageAttributes' in m, false)

    const hA = expectedHash('sns-a', published(t.arn), 0n)
    const hRaw = expectedHash('sns-b', into(t.raw.name), hA)
    const hEnveloped = expectedHash('sns-b', into(t.enveloped.name), hA)
    for (const m of raw) assert.equal(contextOf(m)?.hash, hRaw)
    for (const m of enveloped) assert.equal(contextOf(m)?.hash, hEnveloped)
    await Promise.all([a.flush(), b.flush()])

    const pa = await waitForPoint(agent, 'sns-a', hA)
    assert.equal(pa.ParentHash, 0n)
    assert.deepEqual(pa.EdgeTags, published(t.arn))
    const sizes = payloadSizes(agent, 'sns-a', hA)
    assert.equal(sizes.count, 3)
    // message + `_datadog` + "Binary" + {"dd-pathway-ctx-base64":"<28 characters>"}
    const carrier = 8 + 6 + 56
    assert.ok(Math.abs(sizes.min - (3 + carrier)) <= 1, `smallest payload ${sizes.min}`)
    // the batch's second message: its `kind` attribute counts too (4 + 6 + 1 bytes)
    assert.ok(Math.abs(sizes.max - (5 + carrier + 11)) <= 1, `largest payload ${sizes.max}`)

    const pRaw = await waitForPoint(agent, 'sns-b', hRaw)
    assert.equal(pRaw.ParentHash, hA)
    assert.deepEqual(pRaw.EdgeTags, into(t.raw.name))
    const rawSizes = payloadSizes(agent, 'sns-b', hRaw)
    assert.equal(rawSizes.count, 3)
    const pEnveloped = await waitForPoint(agent, 'sns-b', hEnveloped)
    assert.equal(pEnveloped.ParentHash, hA)
    assert.deepEqual(pEnveloped.EdgeTags, into(t.enveloped.name))
    const envelopedSizes = payloadSizes(agent, 'sns-b', hEnveloped)
    assert.equal(envelopedSizes.count, 3)
    // An enveloped message's size is its body (the notification JSON): larger than the raw one's.
    assert.ok(envelopedSizes.min > rawSizes.max)
  })

  test('the `_datadog` attribute is Binary, as dd-trace writes it: bytes with raw delivery, base64 in the notification; other attributes and keys stay', async () => {
    const a = dataStreams('sns-wire-a')
    const sns = snsClient(a)
    const plain = sqsClient()
    const t = await topic()
    const traceHeaders = { 'x-datadog-trace-id': '123', [PATHWAY_KEY]: 'stale' }
    const attributes: Record<string, MessageAttributeValue> = {
      _datadog: { DataType: 'Binary', BinaryValue: Buffer.from(JSON.stringify(traceHeaders)) },
      color: { DataType: 'String', StringValue: 'blue' },
    }
    await sns.send(new PublishCommand({ TopicArn: t.arn, Message: 'traced', MessageAttributes: attributes }))
    await sns.send(new PublishCommand({ TopicArn: t.arn, Message: 'untraced' }))
    const hA = expectedHash('sns-wire-a', published(t.arn), 0n)

    const raw = await receiveAll(plain, { QueueUrl: t.raw.url, MessageAttributeNames: ['All'] }, 2)
    for (const m of raw) {
      const datadog = m.MessageAttributes!._datadog
      assert.equal(datadog.DataType, 'Binary')
      assert.equal(datadog.StringValue, undefined)
      const json = Buffer.from(datadog.BinaryValue!).toString('utf8')
      assert.equal(contextIn(json).hash, hA)
      if (m.Body === 'traced') {
        assert.deepEqual(m.MessageAttributes!.color, { DataType: 'String', StringValue: 'blue' })
        assert.equal((JSON.parse(json) as Record<string, string>)['x-datadog-trace-id'], '123')
      } else {
        assert.deepEqual(Object.keys(m.MessageAttributes!), ['_datadog'])
        assert.deepEqual(Object.keys(JSON.parse(json) as object), [PATHWAY_KEY])
      }
    }
    const enveloped = await receiveAll(plain, { QueueUrl: t.enveloped.url }, 2)
    for (const m of enveloped) {
      const attribute = envelopeAttribute(m)
      assert.equal(attribute.Type, 'Binary')
      assert.equal(contextIn(Buffer.from(attribute.Value, 'base64').toString('utf8')).hash, hA)
    }
  })

  test('a context dd-trace-js wrote is read, raw and in the notification: its Binary attribute, and a String one as other tracers may write it', async () => {
    const b = dataStreams('sns-foreign-b')
    const sqs = sqsClient(b)
    const plainSns = snsClient()
    const t = await topic()
    // A publish of service sns-foreign-a traced by dd-trace-js: its carrier, by its own codec.
    const hA = expectedHash('sns-foreign-a', published(t.arn), 0n)
    const carrierJson = JSON.stringify(ddTraceCarrier(hA))
    await plainSns.send(
      new PublishCommand({ TopicArn: t.arn, Message: 'binary', MessageAttributes: { _datadog: { DataType: 'Binary', BinaryValue: Buffer.from(carrierJson) } } }),
    )
    await plainSns.send(new PublishCommand({ TopicArn: t.arn, Message: 'string', MessageAttributes: { _datadog: { DataType: 'String', StringValue: carrierJson } } }))
    for (const queue of [t.raw, t.enveloped]) {
      const got = await receiveAll(sqs, { QueueUrl: queue.url }, 2)
      for (const m of got) assert.equal(contextOf(m)?.hash, expectedHash('sns-foreign-b', into(queue.name), hA), `${queue.name}: ${m.Body}`)
    }
  })

  test('a message with 10 attributes, or too large to carry the context, is published unchanged, still counts (contexts left out in stats), warns once per cause, and its consumer starts a new pathway', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const a = dataStreams('sns-full-a')
      const b = dataStreams('sns-full-b')
      const sns = snsClient(a)
      const sqs = sqsClient(b)
      const t = await topic()
      const attributes: Record<string, MessageAttributeValue> = {}
      for (let i = 0; i < 10; i++) attributes[`a${i}`] = { DataType: 'String', StringValue: `v${i}` }
      await sns.send(new PublishCommand({ TopicArn: t.arn, Message: 'full', MessageAttributes: attributes }))
      await sns.send(new PublishBatchCommand({ TopicArn: t.arn, PublishBatchRequestEntries: [{ Id: 'x', Message: 'full', MessageAttributes: attributes }] }))
      // 256 KiB less 256 bytes (dd-trace-go's margin) in all: room for the message, none for the context.
      const large = 'x'.repeat(262_144 - 256 - 40)
      await sns.send(new PublishCommand({ TopicArn: t.arn, Message: large }))
      // A batch that fits, but not with every context: the first messages carry one, the rest go as written.
      const half = 'y'.repeat(131_072 - 128 - 50)
      await sns.send(
        new PublishBatchCommand({ TopicArn: t.arn, PublishBatchRequestEntries: [{ Id: '1', Message: 'small' }, { Id: '2', Message: half }, { Id: '3', Message: half }] }),
      )

      const raw = await receiveAll(sqs, { QueueUrl: t.raw.url, MessageAttributeNames: ['All'] }, 6)
      for (const m of raw) {
        if (m.Body === 'full') assert.deepEqual(m.MessageAttributes, attributes)
        else if (m.Body === 'small') assert.deepEqual(Object.keys(m.MessageAttributes ?? {}), ['_datadog'])
        else assert.equal(m.MessageAttributes, undefined, 'no attribute was added')
      }
      assert.equal(raw.filter((m) => m.Body === half).length, 2)
      // One warning per cause and topic: the attributes, a message too large, a batch too large.
      const warnings = warn.mock.calls.map((call) => String(call.arguments[0])).filter((m) => m.includes(t.arn))
      assert.equal(warnings.length, 3, warnings.join('\n'))
      assert.equal(warnings.filter((w) => /10 message attributes/.test(w)).length, 1)
      assert.equal(warnings.filter((w) => /past SNS's limit \(261888 bytes: /.test(w)).length, 1)
      assert.equal(warnings.filter((w) => /PublishBatch past SNS's limit/.test(w)).length, 1)
      // The large message and the batch's two halves went without their context.
      assert.equal(a.stats.contextsLeftOut, 3)

      const hA = expectedHash('sns-full-a', published(t.arn), 0n)
      const hB = expectedHash('sns-full-b', into(t.raw.name), 0n)
      for (const m of raw) assert.equal(contextOf(m)?.hash, m.Body === 'small' ? expectedHash('sns-full-b', into(t.raw.name), hA) : hB)
      await Promise.all([a.flush(), b.flush()])
      await waitForPoint(agent, 'sns-full-a', hA)
      const sizes = payloadSizes(agent, 'sns-full-a', hA)
      assert.equal(sizes.count, 6)
      // The large message counts at its own size, without a carrier.
      assert.ok(Math.abs(sizes.max - large.length) / large.length < 0.02)
      const pb = await waitForPoint(agent, 'sns-full-b', hB)
      assert.equal(pb.ParentHash, 0n)
    } finally {
      warn.mock.restore()
    }
  })

  test('the automatic mode: the module as the require hook hands it over is patched (clients made before too), and undone', async () => {
    const require = createRequire(import.meta.url)
    const sdk = require('@aws-sdk/client-sns') as typeof import('@aws-sdk/client-sns')
    const baseDir = dirname(require.resolve('@aws-sdk/client-sns/package.json'))
    const a = dataStreams('sns-auto-a')
    const b = dataStreams('sns-auto-b')
    const early = services.client(new sdk.SNSClient(sqsClientConfig(peer.endpoint)))
    const sqs = sqsClient(b)
    const t = await topic()
    const originalSend = sdk.SNSClient.prototype.send
    const undos = patchModule(sdk, '@aws-sdk/client-sns', a, new WeakSet(), baseDir)
    try {
      assert.equal(undos.length, 1)
      assert.notEqual(sdk.SNSClient.prototype.send, originalSend)
      await early.send(new sdk.PublishCommand({ TopicArn: t.arn, Message: 'patched' }))
    } finally {
      for (const undo of undos) undo()
    }
    assert.equal(sdk.SNSClient.prototype.send, originalSend)
    // Undone: the same client publishes without a context.
    await early.send(new sdk.PublishCommand({ TopicArn: t.arn, Message: 'undone' }))

    const got = await receiveAll(sqs, { QueueUrl: t.enveloped.url }, 2)
    const hashOf = (body: string) => contextOf(got.find((m) => (JSON.parse(m.Body!) as { Message: string }).Message === body)!)?.hash
    assert.equal(hashOf('patched'), expectedHash('sns-auto-b', into(t.enveloped.name), expectedHash('sns-auto-a', published(t.arn), 0n)))
    assert.equal(hashOf('undone'), expectedHash('sns-auto-b', into(t.enveloped.name), 0n))
    assert.equal(snsInstrumentation.supportedVersions, '>=3.0.0 <4')
  })

  test('when pathwise fails inside, the calls go on and return what they would have', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const sns = snsClient(brokenDataStreams())
      const t = await topic()
      const sent = await sns.send(new PublishCommand({ TopicArn: t.arn, Message: 'still sent' }))
      assert.ok(sent.MessageId)
      const batch = await sns.send(new PublishBatchCommand({ TopicArn: t.arn, PublishBatchRequestEntries: [{ Id: '1', Message: 'batch too' }] }))
      assert.equal(batch.Successful?.length, 1)
      const got = await receiveAll(sqsClient(), { QueueUrl: t.raw.url, MessageAttributeNames: ['All'] }, 2)
      assert.deepEqual(got.map((m) => m.Body).sort(), ['batch too', 'still sent'])
      for (const m of got) assert.equal(m.MessageAttributes, undefined)
      // Errors of the call itself reach the caller unchanged.
      const missing = new PublishCommand({ TopicArn: `${t.arn}-missing`, Message: 'x' })
      const expected = (await snsClient().send(missing).catch((err: unknown) => err)) as Error
      const actual = (await sns.send(missing).catch((err: unknown) => err)) as Error
      assert.ok(expected instanceof Error)
      assert.equal(actual.name, expected.name)
      assert.equal(actual.message, expected.message)
      const messagesWarned = warn.mock.calls.map((call) => String(call.arguments[0]))
      assert.ok(messagesWarned.some((m) => /sns/i.test(m)), messagesWarned.join('; '))
      assert.equal(new Set(messagesWarned).size, messagesWarned.length, 'each failure is reported once')
    } finally {
      warn.mock.restore()
    }
  })
})
