/**
 * EventBridge with the real @aws-sdk/client-eventbridge. No EventBridge emulator installs here:
 * PutEvents goes to a real local HTTP server standing in for EventBridge (it speaks the JSON 1.1
 * protocol the client speaks and keeps what it receives), and the tests assert the Detail it got:
 * `_datadog` with a valid context where the Detail is a JSON object, the rest byte for byte as
 * written. The consume side: the event, shaped as EventBridge delivers it to a rule's SQS target,
 * in a fauxqs queue read with the real @aws-sdk/client-sqs, directly and through an SNS topic;
 * the hash chain reaches a real HTTP Agent stand-in. The automatic mode for SNS and EventBridge in
 * child processes under `--import` and `-r pathwise/register` (uses the built package).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, mock, test } from 'node:test'
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge'
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns'
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { PATHWAY_KEY, decodePathwayContext, type DataStreams } from '../bindings/index.js'
import { pathwiseEventBridge } from '../bindings/aws/index.js'
import { eventBridgeInstrumentation } from '../bindings/aws/eventbridge.js'
import { patchModule } from '../bindings/register/auto.js'
import { contextOf } from '../bindings/instrument/received-messages.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { runNode } from './helpers/run-node.js'
import { startSqs, sqsClientConfig, type SqsPeer } from './peers/sqs.js'
import { ENV, expectedHash, waitForPoint } from './fixtures/aws/pathways.js'
import { TestServices, brokenDataStreams, payloadSizes, receiveAll } from './fixtures/aws/services.js'
import { ddTraceCarrier } from './fixtures/aws/dd-trace-carrier.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/aws/${name}`, import.meta.url))
const put = (bus: string, detailType: string) => ['direction:out', `exchange:${bus}`, `topic:${detailType}`, 'type:eventbridge']
const into = (queue: string) => ['direction:in', `topic:${queue}`, 'type:sqs']

interface Received {
  target: string | undefined
  entries: { Detail?: string; DetailType?: string; Source?: string; EventBusName?: string; Resources?: string[] }[]
}

/** A real HTTP server answering PutEvents as EventBridge does (AWS JSON 1.1); keeps each request's entries. */
async function startEventBridgeStandIn(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Entries: Received['entries'] }
      received.push({ target: req.headers['x-amz-target'] as string | undefined, entries: body.Entries })
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `r${received.length}` })
      res.end(JSON.stringify({ FailedEntryCount: 0, Entries: body.Entries.map((_, i) => ({ EventId: `e${received.length}-${i}` })) }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

/** The event a rule's SQS target receives for an entry, as EventBridge shapes it. */
function deliveredEvent(entry: Received['entries'][number]): string {
  return JSON.stringify({
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: '000000000000',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: entry.Resources ?? [],
    detail: JSON.parse(entry.Detail ?? '{}'),
  })
}

/** The context under `_datadog` of a Detail's text. */
function carriedHash(detail: string | undefined): bigint | undefined {
  const carrier = (JSON.parse(detail ?? '{}') as { _datadog?: Record<string, string> })._datadog
  return decodePathwayContext(carrier?.[PATHWAY_KEY])?.hash
}

/** A Detail's text without the `_datadog` member pathwise added as its last one. */
function withoutCarrier(detail: string | undefined): string | undefined {
  return detail?.replace(/,?"_datadog":\{[^{}]*\}(?=\s*\}$)/, '')
}

describe('EventBridge', () => {
  let agent: TestAgent
  let peer: SqsPeer
  let eventBridge: Awaited<ReturnType<typeof startEventBridgeStandIn>>
  const services = new TestServices(() => agent.url, () => peer.endpoint)
  const dataStreams = (name: string) => services.dataStreams(name)
  const sqsClient = (dsm?: DataStreams) => services.sqs(dsm)
  let count = 0

  function eventBridgeClient(dsm?: DataStreams): EventBridgeClient {
    const client = services.client(
      new EventBridgeClient({ region: 'us-east-1', endpoint: eventBridge.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, requestHandler: new NodeHttpHandler() }),
    )
    if (dsm !== undefined) client.middlewareStack.use(pathwiseEventBridge(dsm))
    return client
  }
  async function queue(): Promise<{ name: string; url: string }> {
    const name = `eb${++count}`
    const { QueueUrl } = await sqsClient().send(new CreateQueueCommand({ QueueName: name }))
    return { name, url: QueueUrl! }
  }
  /** Sends what the stand-in received for request `i` on as the rule's SQS target would get it. */
  async function deliver(i: number, queueUrl: string, pick: (e: Received['entries'][number]) => boolean = () => true): Promise<number> {
    const entries = eventBridge.received[i].entries.filter(pick)
    const plain = sqsClient()
    for (const entry of entries) await plain.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: deliveredEvent(entry) }))
    return entries.length
  }

  before(async () => {
    ;[agent, peer, eventBridge] = await Promise.all([startAgent(), startSqs(), startEventBridgeStandIn()])
  })
  after(async () => {
    await services.close()
    await Promise.all([agent.close(), peer.stop(), eventBridge.close()])
  })

  test('PutEvents: each JSON-object Detail gets `_datadog` with its context and keeps the rest byte for byte; other Details go as written', async () => {
    const a = dataStreams('eb-a')
    const client = eventBridgeClient(a)
    const traced = JSON.stringify({ order: 2, _datadog: { 'x-datadog-trace-id': '123', [PATHWAY_KEY]: 'stale' } })
    const entries: PutEventsRequestEntry[] = [
      // A number past a double's precision and blanks: the text is spliced, not re-serialized.
      { Source: 'shop', DetailType: 'OrderPlaced', Detail: '{ "order": 1, "id": 12345678901234567890123 }' },
      { Source: 'shop', DetailType: 'OrderPlaced', Detail: traced, EventBusName: 'orders-bus', Resources: ['arn:aws:s3:::bucket'] },
      { Source: 'shop', DetailType: 'Raw', Detail: 'not json' },
      { Source: 'shop', DetailType: 'Raw', Detail: '[1,2]' },
      { Source: 'shop', DetailType: 'Empty', Detail: '{}', Time: new Date() },
    ]
    const input = { Entries: entries }
    const written = structuredClone(input)
    const output = await client.send(new PutEventsCommand(input))
    assert.equal(output.FailedEntryCount, 0)
    assert.equal(output.Entries?.length, 5)
    assert.deepEqual(input, written, "the caller's input is left as written")

    const { target, entries: got } = eventBridge.received.at(-1)!
    assert.equal(target, 'AWSEvents.PutEvents')
    const hDefault = expectedHash('eb-a', put('default', 'OrderPlaced'), 0n)
    const hBus = expectedHash('eb-a', put('orders-bus', 'OrderPlaced'), 0n)
    const hEmpty = expectedHash('eb-a', put('default', 'Empty'), 0n)
    assert.equal(carriedHash(got[0].Detail), hDefault)
    assert.equal(withoutCarrier(got[0].Detail), entries[0].Detail)
    assert.equal(carriedHash(got[1].Detail), hBus)
    // The other keys of an existing `_datadog` stay.
    const carrier = (JSON.parse(got[1].Detail!) as { _datadog: Record<string, string> })._datadog
    assert.deepEqual(Object.keys(carrier).sort(), [PATHWAY_KEY, 'x-datadog-trace-id'])
    assert.equal(carrier['x-datadog-trace-id'], '123')
    assert.deepEqual({ ...(JSON.parse(got[1].Detail!) as object), _datadog: null }, { order: 2, _datadog: null })
    assert.equal(got[2].Detail, 'not json')
    assert.equal(got[3].Detail, '[1,2]')
    assert.equal(carriedHash(got[4].Detail), hEmpty)
    assert.equal(withoutCarrier(got[4].Detail), '{}')
    for (const [i, entry] of got.entries()) {
      assert.equal(entry.Source, entries[i].Source)
      assert.equal(entry.DetailType, entries[i].DetailType)
    }

    await a.flush()
    const p = await waitForPoint(agent, 'eb-a', hDefault)
    assert.equal(p.ParentHash, 0n)
    assert.deepEqual(p.EdgeTags, put('default', 'OrderPlaced'))
    // Source + DetailType + the Detail as sent (`,"_datadog":{"dd-pathway-ctx-base64":"<28>"}`: 68 bytes).
    const size = 4 + 11 + Buffer.byteLength(entries[0].Detail!) + 68
    const largest = payloadSizes(agent, 'eb-a', hDefault).max
    assert.ok(Math.abs(largest - size) <= size * 0.02, `payload ${largest}, expected ${size}`)
    assert.deepEqual((await waitForPoint(agent, 'eb-a', hBus)).EdgeTags, put('orders-bus', 'OrderPlaced'))
    // Entries that cannot carry a context still count.
    const hRaw = expectedHash('eb-a', put('default', 'Raw'), 0n)
    await waitForPoint(agent, 'eb-a', hRaw)
    assert.equal(payloadSizes(agent, 'eb-a', hRaw).count, 2)
  })

  test("a rule's SQS target receives the event, directly and through SNS: the SQS consume's parent is the PutEvents", async () => {
    const a = dataStreams('eb-chain-a')
    const b = dataStreams('eb-chain-b')
    await eventBridgeClient(a).send(
      new PutEventsCommand({ Entries: [{ Source: 'shop', DetailType: 'OrderPlaced', Detail: '{"order":7}', EventBusName: 'orders-bus' }] }),
    )
    const request = eventBridge.received.length - 1
    const hA = expectedHash('eb-chain-a', put('orders-bus', 'OrderPlaced'), 0n)

    const direct = await queue()
    await deliver(request, direct.url)
    // EventBridge -> SNS -> SQS (raw delivery off): the event is the notification's Message.
    const viaSns = await queue()
    const sns = services.client(new SNSClient(sqsClientConfig(peer.endpoint)))
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'eb-fanout' }))
    const { Attributes } = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: viaSns.url, AttributeNames: ['QueueArn'] }))
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn }))
    await sns.send(new PublishCommand({ TopicArn, Message: deliveredEvent(eventBridge.received[request].entries[0]) }))

    const consumer = sqsClient(b)
    const [m1] = await receiveAll(consumer, { QueueUrl: direct.url }, 1)
    const [m2] = await receiveAll(consumer, { QueueUrl: viaSns.url }, 1)
    const hDirect = expectedHash('eb-chain-b', into(direct.name), hA)
    const hViaSns = expectedHash('eb-chain-b', into(viaSns.name), hA)
    assert.equal(contextOf(m1)?.hash, hDirect)
    assert.equal(contextOf(m2)?.hash, hViaSns)
    // The body reaches the caller as delivered.
    assert.equal((JSON.parse(m1.Body!) as { detail: { order: number } }).detail.order, 7)

    await Promise.all([a.flush(), b.flush()])
    assert.equal((await waitForPoint(agent, 'eb-chain-a', hA)).ParentHash, 0n)
    const p1 = await waitForPoint(agent, 'eb-chain-b', hDirect)
    assert.equal(p1.ParentHash, hA)
    assert.deepEqual(p1.EdgeTags, into(direct.name))
    assert.equal((await waitForPoint(agent, 'eb-chain-b', hViaSns)).ParentHash, hA)
  })

  test('an event whose detail dd-trace-js filled is read; bodies that only look like events start a new pathway; all are handed back as they came', async () => {
    const b = dataStreams('eb-odd-b')
    const q = await queue()
    const plain = sqsClient()
    // A PutEvents of service eb-dd-a traced by dd-trace-js, as the rule's SQS target receives it.
    const hA = expectedHash('eb-dd-a', put('default', 'OrderPlaced'), 0n)
    const traced = deliveredEvent({ Source: 'shop', DetailType: 'OrderPlaced', Detail: JSON.stringify({ order: 3, _datadog: ddTraceCarrier(hA) }) })
    await plain.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: traced }))
    const [first] = await receiveAll(sqsClient(b), { QueueUrl: q.url }, 1)
    assert.equal(first.Body, traced)
    assert.equal(contextOf(first)?.hash, expectedHash('eb-odd-b', into(q.name), hA))

    const bodies = [
      '{"detail-type":"x","detail":"not an object"}',
      '{"detail-type":"x","detail":{"_datadog":"text"}}',
      '{"detail-type":"x","detail":{"_datadog":{"dd-pathway-ctx-base64":"!!!"}}}',
      '{"Type":"Notification","Message":"{\\"detail-type\\": 1"}',
      '{"detail-type": broken',
      'Notification detail-type',
    ]
    for (const body of bodies) await plain.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    const got = await receiveAll(sqsClient(b), { QueueUrl: q.url }, bodies.length)
    assert.deepEqual(got.map((m) => m.Body).sort(), [...bodies].sort())
    for (const m of got) assert.equal(contextOf(m)?.hash, expectedHash('eb-odd-b', into(q.name), 0n), m.Body)
  })

  test('a request whose entries would pass 256 KB with every context: contexts in order while it fits, the rest as written; every entry counts', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const a = dataStreams('eb-large-a')
      const half = JSON.stringify({ fill: 'x'.repeat(131_072 - 60) })
      await eventBridgeClient(a).send(
        new PutEventsCommand({ Entries: [{ Source: 's', DetailType: 'Big', Detail: half }, { Source: 's', DetailType: 'Big', Detail: half }] }),
      )
      const { entries } = eventBridge.received.at(-1)!
      const hBig = expectedHash('eb-large-a', put('default', 'Big'), 0n)
      assert.equal(carriedHash(entries[0].Detail), hBig)
      assert.equal(entries[1].Detail, half)
      assert.equal(a.stats.contextsLeftOut, 1)
      assert.equal(warn.mock.calls.filter((c) => /EventBridge bus default: the contexts would have pushed a PutEvents past/.test(String(c.arguments[0]))).length, 1)
      await a.flush()
      await waitForPoint(agent, 'eb-large-a', hBig)
      assert.equal(payloadSizes(agent, 'eb-large-a', hBig).count, 2)
    } finally {
      warn.mock.restore()
    }
  })

  test('the automatic mode: the module as the require hook hands it over is patched (clients made before too), and undone', async () => {
    const require = createRequire(import.meta.url)
    const sdk = require('@aws-sdk/client-eventbridge') as typeof import('@aws-sdk/client-eventbridge')
    const baseDir = dirname(require.resolve('@aws-sdk/client-eventbridge/package.json'))
    const a = dataStreams('eb-auto-a')
    const early = eventBridgeClient()
    const originalSend = sdk.EventBridgeClient.prototype.send
    const entry = { Source: 's', DetailType: 'Auto', Detail: '{"n":1}' }
    const undos = patchModule(sdk, '@aws-sdk/client-eventbridge', a, new WeakSet(), baseDir)
    try {
      assert.equal(undos.length, 1)
      await early.send(new sdk.PutEventsCommand({ Entries: [entry] }))
    } finally {
      for (const undo of undos) undo()
    }
    assert.equal(sdk.EventBridgeClient.prototype.send, originalSend)
    assert.equal(carriedHash(eventBridge.received.at(-1)!.entries[0].Detail), expectedHash('eb-auto-a', put('default', 'Auto'), 0n))
    await early.send(new sdk.PutEventsCommand({ Entries: [entry] }))
    assert.equal(eventBridge.received.at(-1)!.entries[0].Detail, '{"n":1}')
    assert.equal(eventBridgeInstrumentation.supportedVersions, '>=3.0.0 <4')
  })

  for (const [mode, args] of [
    ['esm', ['--import', 'pathwise/register', fixture('auto-publish.mjs')]],
    ['cjs', ['-r', 'pathwise/register', fixture('auto-publish.require.cjs')]],
  ] as const) {
    test(`${args[0]} pathwise/register: SNS and EventBridge clients are instrumented (uses the built package)`, async () => {
      assert.ok(existsSync(`${root}/dist/register.js`) && existsSync(`${root}/dist/register.cjs`), 'dist/ is missing: npm run build')
      const sns = services.client(new SNSClient(sqsClientConfig(peer.endpoint)))
      const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `eb-auto-${mode}` }))
      const q = await queue()
      const { Attributes } = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['QueueArn'] }))
      await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn }))

      const service = `eb-register-${mode}`
      const result = await runNode([...args], {
        DD_DATA_STREAMS_ENABLED: 'true',
        DD_SERVICE: service,
        DD_ENV: ENV,
        DD_TRACE_AGENT_URL: agent.url,
        SQS_ENDPOINT: peer.endpoint,
        EVENTBRIDGE_ENDPOINT: eventBridge.url,
        TOPIC_ARN: TopicArn!,
        MODE: mode,
      })
      assert.equal(result.code, 0, result.stderr)
      const putEvents = eventBridge.received.find((r) => r.entries[0]?.DetailType === mode)
      assert.equal(carriedHash(putEvents?.entries[0].Detail), expectedHash(service, put('default', mode), 0n))
      const [message] = await receiveAll(sqsClient(dataStreams('eb-register-b')), { QueueUrl: q.url }, 1)
      const published = expectedHash(service, ['direction:out', `topic:${TopicArn}`, 'type:sns'], 0n)
      assert.equal(contextOf(message)?.hash, expectedHash('eb-register-b', into(q.name), published))
    })
  }

  test('when pathwise fails inside, the call goes on with the entries as written and returns what it would have', async () => {
    const warn = mock.method(console, 'warn', () => {})
    try {
      const output = await eventBridgeClient(brokenDataStreams()).send(new PutEventsCommand({ Entries: [{ Source: 's', DetailType: 'T', Detail: '{"a":1}' }] }))
      assert.equal(output.Entries?.[0].EventId, `e${eventBridge.received.length}-0`)
      assert.equal(eventBridge.received.at(-1)!.entries[0].Detail, '{"a":1}')
      const messagesWarned = warn.mock.calls.map((call) => String(call.arguments[0]))
      assert.ok(messagesWarned.some((m) => /eventbridge/i.test(m)), messagesWarned.join('; '))
      assert.equal(new Set(messagesWarned).size, messagesWarned.length, 'each failure is reported once')
    } finally {
      warn.mock.restore()
    }
  })
})
