/**
 * SQS near its size limits, through fauxqs and the real AWS SDK: every message the application
 * sends without pathwise is also delivered with pathwise, bodies and user attributes unchanged,
 * and where the context would cost the message it is left out (counted in
 * `dsm.stats.contextsLeftOut`, warned once per queue):
 * - a SendMessageBatch 206 bytes under the 1 MiB batch total: contexts in order while it fits;
 * - a queue whose MaximumMessageSize is 256 KiB: a message 60 bytes under it, alone and in a batch;
 * - a queue smaller than pathwise assumes: SQS refuses the message with its context, pathwise sends
 *   it again as written and remembers the limit (one refusal); in a batch, the refused entries are
 *   sent again and the two answers folded into one;
 * - the limit learned from a GetQueueAttributes the application makes (middleware mode) and from
 *   the one the automatic mode makes itself, without delaying the send;
 * - failed sends (a missing queue, an emulator that is gone) counted in `dsm.stats.failedSends`
 *   and sent to the Agent as `pathwise_failed_sends` backlogs.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { after, before, describe, mock, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs'
import { PATHWAY_KEY, decodePathwayContext, type DataStreams } from '../bindings/index.js'
import { patchModule } from '../bindings/register/auto.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startSqs, sqsClientConfig, type SqsPeer } from './peers/sqs.js'
import { expectedHash } from './fixtures/aws/pathways.js'
import { TestServices, receiveAll } from './fixtures/aws/services.js'

const out = (queue: string) => ['direction:out', `topic:${queue}`, 'type:sqs']
const color: Record<string, MessageAttributeValue> = { color: { DataType: 'String', StringValue: 'blue' } }

/** The hash of the context a received message carries, or undefined without one. */
function carried(message: Message): bigint | undefined {
  const text = message.MessageAttributes?._datadog?.StringValue
  return text === undefined ? undefined : decodePathwayContext(JSON.parse(text)[PATHWAY_KEY])?.hash
}

/** What the application sees of a received message: its body and its own attributes. */
const userView = (m: Message) => {
  const { _datadog, ...attributes } = m.MessageAttributes ?? {}
  return JSON.stringify([m.Body, attributes])
}

describe('SQS size limits', () => {
  let agent: TestAgent
  let peer: SqsPeer
  const services = new TestServices(
    () => agent.url,
    () => peer.endpoint,
  )
  let queueCount = 0
  let warn: ReturnType<typeof mock.method>

  /** A queue made by a client pathwise does not see: its limit is unknown to pathwise. */
  async function queue(attributes?: Record<string, string>): Promise<{ name: string; url: string }> {
    const name = `limits${++queueCount}`
    const { QueueUrl } = await services.sqs().send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))
    return { name, url: QueueUrl! }
  }

  /** An instrumented client that counts the SendMessage and SendMessageBatch requests it makes. */
  function countingSqs(dsm: DataStreams): { sqs: SQSClient; requests: () => number } {
    const sqs = services.sqs(dsm)
    let requests = 0
    sqs.middlewareStack.add(
      (next) => async (args) => {
        requests++
        return next(args)
      },
      { step: 'build', name: 'countRequests' },
    )
    return { sqs, requests: () => requests }
  }

  const warnings = (queue: string) => warn.mock.calls.map((c) => String(c.arguments[0])).filter((w) => w.includes(`SQS queue ${queue}:`))

  /** Sends the same batch with and without pathwise, to twin queues, and returns what each delivered, as the application sees it. */
  async function twins(dsm: DataStreams, attributes: Record<string, string> | undefined, entries: SendMessageBatchRequestEntry[]) {
    const [plain, instrumented] = [await queue(attributes), await queue(attributes)]
    const bare = await services.sqs().send(new SendMessageBatchCommand({ QueueUrl: plain.url, Entries: entries }))
    const written = structuredClone(entries)
    const sent = await services.sqs(dsm).send(new SendMessageBatchCommand({ QueueUrl: instrumented.url, Entries: entries }))
    assert.deepEqual(entries, written, "the caller's entries are left as written")
    assert.equal(bare.Successful?.length, entries.length, 'without pathwise, every entry is taken')
    assert.equal(sent.Successful?.length, entries.length, 'with pathwise, every entry is taken')
    assert.equal(sent.Failed?.length ?? 0, 0)
    const read = async (url: string) => (await receiveAll(services.sqs(), { QueueUrl: url, MessageAttributeNames: ['All'] }, entries.length)).sort((a, b) => a.Body!.length - b.Body!.length || a.Body!.localeCompare(b.Body!))
    const [without, withPathwise] = [await read(plain.url), await read(instrumented.url)]
    assert.deepEqual(withPathwise.map(userView), without.map(userView), 'bodies and user attributes arrive unchanged')
    return { queue: instrumented, received: withPathwise }
  }

  before(async () => {
    ;[agent, peer] = await Promise.all([startAgent(), startSqs()])
    warn = mock.method(console, 'warn', () => {})
  })
  after(async () => {
    warn.mock.restore()
    await services.close()
    await Promise.all([agent.close(), peer.stop()])
  })

  test('a batch 206 bytes under the 1 MiB total: contexts in order while it fits, all ten delivered unchanged', async () => {
    const dsm = services.dataStreams('limits-batch')
    // 10 entries of 104,837 bytes: 1,048,370 in all. A context weighs 70 bytes: two fit in the 206 left.
    const entries = Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: String(i).repeat(104_837) }))
    const { queue: q, received } = await twins(dsm, undefined, entries)
    const withContext = received.filter((m) => carried(m) !== undefined)
    assert.deepEqual(withContext.map((m) => m.Body![0]).sort(), ['0', '1'])
    for (const m of withContext) assert.equal(carried(m), expectedHash('limits-batch', out(q.name), 0n))
    assert.equal(dsm.stats.contextsLeftOut, 8)
    assert.equal(warnings(q.name).filter((w) => /SendMessageBatch past SQS's 1048576 bytes in all/.test(w)).length, 1)
  })

  test('a 256 KiB queue: a message 60 bytes under its limit is delivered unchanged, alone and in a batch', async () => {
    const dsm = services.dataStreams('limits-256')
    const body = 'x'.repeat(262_144 - 60)
    const { queue: q, received } = await twins(dsm, { MaximumMessageSize: '262144' }, [
      { Id: 'big', MessageBody: body, MessageAttributes: color },
      { Id: 'small', MessageBody: 'small' },
    ])
    assert.equal(carried(received.find((m) => m.Body === body)!), undefined)
    assert.equal(carried(received.find((m) => m.Body === 'small')!), expectedHash('limits-256', out(q.name), 0n))
    // SendMessage alone, with and without pathwise.
    await services.sqs().send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body, MessageAttributes: color }))
    await services.sqs(dsm).send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body, MessageAttributes: color }))
    const alone = await receiveAll(services.sqs(), { QueueUrl: q.url, MessageAttributeNames: ['All'] }, 2)
    for (const m of alone) assert.deepEqual(m.MessageAttributes, color)
    assert.equal(dsm.stats.contextsLeftOut, 2)
    const said = warnings(q.name)
    assert.equal(said.length, 1, said.join('\n'))
    assert.match(said[0], /past 262144 bytes, the size pathwise assumes until it learns the queue's MaximumMessageSize/)
  })

  test('a queue smaller than assumed: the refused message is sent again as written, and the limit is remembered', async () => {
    const dsm = services.dataStreams('limits-refused')
    const { sqs, requests } = countingSqs(dsm)
    const q = await queue({ MaximumMessageSize: '2048' })
    const body = 'r'.repeat(2000)
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    assert.equal(requests(), 2, 'refused with the context, then sent as written')
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    assert.equal(requests(), 3, 'the limit is known now: sent as written at once')
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'short' }))
    const got = await receiveAll(services.sqs(), { QueueUrl: q.url, MessageAttributeNames: ['All'] }, 3)
    assert.deepEqual(got.map((m) => m.Body).sort(), [body, body, 'short'])
    for (const m of got) assert.equal(carried(m), m.Body === 'short' ? expectedHash('limits-refused', out(q.name), 0n) : undefined)
    assert.equal(dsm.stats.contextsLeftOut, 2)
    assert.equal(dsm.stats.failedSends, 0)

    // A batch to another such queue: the two entries refused with their contexts are sent again, one answer comes back.
    const q2 = await queue({ MaximumMessageSize: '2048' })
    const before = requests()
    const answer = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: q2.url,
        Entries: [
          { Id: 'a', MessageBody: body },
          { Id: 'b', MessageBody: 'small' },
          { Id: 'c', MessageBody: body, MessageAttributes: color },
        ],
      }),
    )
    assert.equal(requests() - before, 2)
    assert.deepEqual(answer.Successful?.map((s) => s.Id).sort(), ['a', 'b', 'c'])
    assert.deepEqual(answer.Failed ?? [], [])
    const batch = await receiveAll(services.sqs(), { QueueUrl: q2.url, MessageAttributeNames: ['All'] }, 3)
    assert.deepEqual(batch.find((m) => m.Body === body && m.MessageAttributes?.color)?.MessageAttributes, color)
    assert.equal(carried(batch.find((m) => m.Body === 'small')!), expectedHash('limits-refused', out(q2.name), 0n))
    assert.equal(dsm.stats.contextsLeftOut, 4)
  })

  test("the queue's limit learned from the application's GetQueueAttributes, and asked for by the automatic mode", async () => {
    // fauxqs makes 1 MiB queues: a 300,000-byte message has room for its context once that is known.
    const body = 'l'.repeat(300_000)
    const dsm = services.dataStreams('limits-learned')
    const sqs = services.sqs(dsm)
    const q = await queue()
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['MaximumMessageSize'] }))
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }))
    const got = await receiveAll(services.sqs(), { QueueUrl: q.url, MessageAttributeNames: ['All'] }, 2)
    assert.deepEqual(got.map(carried).filter((h) => h !== undefined), [expectedHash('limits-learned', out(q.name), 0n)])
    assert.equal(dsm.stats.contextsLeftOut, 1)

    const require = createRequire(import.meta.url)
    const sdk = require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs')
    const auto = services.dataStreams('limits-auto')
    const undos = patchModule(sdk, '@aws-sdk/client-sqs', auto, new WeakSet(), dirname(require.resolve('@aws-sdk/client-sqs/package.json')))
    try {
      const client = services.client(new sdk.SQSClient(sqsClientConfig(peer.endpoint)))
      const q2 = await queue()
      // The first send goes at once, on the 256 KiB assumption, while pathwise asks in the background.
      await client.send(new sdk.SendMessageCommand({ QueueUrl: q2.url, MessageBody: body }))
      let sends = 1
      for (;;) {
        await sleep(20)
        await client.send(new sdk.SendMessageCommand({ QueueUrl: q2.url, MessageBody: body }))
        sends++
        if (auto.stats.contextsLeftOut < sends) break
        assert.ok(sends < 50, 'the automatic mode learns the limit')
      }
      const all = await receiveAll(services.sqs(), { QueueUrl: q2.url, MessageAttributeNames: ['All'] }, sends)
      assert.equal(all.filter((m) => carried(m) === expectedHash('limits-auto', out(q2.name), 0n)).length, 1)
    } finally {
      for (const undo of undos) undo()
    }
  })

  test('failed sends: counted in stats.failedSends and at the Agent, per queue', async () => {
    const dsm = services.dataStreams('limits-failed')
    const sqs = services.sqs(dsm)
    const q = await queue()
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'delivered' }))
    const missing = `${q.url}-missing`
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: missing, MessageBody: 'lost' })))
    await assert.rejects(sqs.send(new SendMessageBatchCommand({ QueueUrl: missing, Entries: [{ Id: '1', MessageBody: 'a' }, { Id: '2', MessageBody: 'b' }] })))
    assert.equal(dsm.stats.failedSends, 3)

    // An outage: the emulator is gone, the SDK's retries run out.
    const gone = await startSqs()
    const outage = services.client(new SQSClient({ ...sqsClientConfig(gone.endpoint), maxAttempts: 2 }))
    const { QueueUrl } = await outage.send(new CreateQueueCommand({ QueueName: 'outage' }))
    const instrumented = services.client(new SQSClient({ ...sqsClientConfig(gone.endpoint), maxAttempts: 2 }))
    const { pathwiseSqs } = await import('../bindings/aws/index.js')
    instrumented.middlewareStack.use(pathwiseSqs(dsm))
    await instrumented.send(new SendMessageCommand({ QueueUrl, MessageBody: 'before' }))
    await gone.stop()
    for (let i = 0; i < 3; i++) await assert.rejects(instrumented.send(new SendMessageCommand({ QueueUrl, MessageBody: `during ${i}` })))
    assert.equal(dsm.stats.failedSends, 6)

    await dsm.flush()
    const backlogs = agent.payloads
      .filter((p) => p.Service === 'limits-failed')
      .flatMap((p) => p.Stats.flatMap((b) => b.Backlogs))
      .filter((b) => b.Tags[0] === 'type:pathwise_failed_sends')
    const total = (queueName: string) =>
      backlogs.filter((b) => b.Tags.includes(`topic:${queueName}`) && b.Tags.includes('transport:sqs')).reduce((n, b) => n + Number(b.Value), 0)
    assert.equal(total(`${q.name}-missing`), 3)
    assert.equal(total('outage'), 3)
  })
})
