/**
 * The automatic mode. In child processes started as users start them, `--import pathwise/register`
 * (the SDK imported) and `-r pathwise/register` (the SDK required), with DD_DATA_STREAMS_ENABLED=true:
 * one service receives from SQS, sends on, puts to Kinesis and reads back, and the whole chain
 * reaches the Agent; the application's own copy of pathwise (`contextOf`, `withMessageContext`)
 * works with the contexts the automatic mode's copy recorded. In process: clients created before
 * the patch are covered, a hand-added plugin and the automatic one instrument a call once, and
 * the undo restores `send` and quiets the middleware already added.
 * Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { CreateStreamCommand, KinesisClient, waitUntilStreamExists } from '@aws-sdk/client-kinesis'
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs'
import { PATHWAY_KEY, createDataStreams, decodePathwayContext, type DataStreams } from '../bindings/index.js'
import { pathwiseSqs, sqsInstrumentation } from '../bindings/aws/sqs.js'
import { runNode } from './helpers/run-node.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { kinesisClientConfig, startKinesis, type KinesisPeer } from './peers/kinesis.js'
import { sqsClientConfig, startSqs, type SqsPeer } from './peers/sqs.js'
import { ENV, expectedHash, waitForPoint } from './fixtures/aws/pathways.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/aws/${name}`, import.meta.url))



describe('AWS automatic mode', () => {
  let agent: TestAgent
  let sqsPeer: SqsPeer
  let kinesisPeer: KinesisPeer

  before(async () => {
    ;[agent, sqsPeer, kinesisPeer] = await Promise.all([startAgent(), startSqs(), startKinesis()])
  })
  after(async () => {
    await Promise.all([agent.close(), sqsPeer.stop(), kinesisPeer.stop()])
  })

  for (const [mode, args] of [
    ['esm', ['--import', 'pathwise/register', fixture('auto-app.mjs')]],
    ['cjs', ['-r', 'pathwise/register', fixture('auto-app.cjs')]],
  ] as const) {
    test(`${args[0]} pathwise/register: SQS and Kinesis clients are instrumented, the chain reaches the Agent`, async () => {
      assert.ok(existsSync(`${root}/dist/register.js`) && existsSync(`${root}/dist/register.cjs`), 'dist/ is missing: npm run build')
      const sqs = new SQSClient(sqsClientConfig(sqsPeer.endpoint))
      const kinesis = new KinesisClient(kinesisClientConfig(kinesisPeer.endpoint))
      const [q1, q2, q3] = [1, 2, 3].map((n) => `auto-${mode}-${n}`)
      const stream = `auto-${mode}`
      const [{ QueueUrl: url1 }, { QueueUrl: url2 }, { QueueUrl: url3 }] = await Promise.all([
        sqs.send(new CreateQueueCommand({ QueueName: q1 })),
        sqs.send(new CreateQueueCommand({ QueueName: q2 })),
        sqs.send(new CreateQueueCommand({ QueueName: q3 })),
        kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 })),
      ])
      await waitUntilStreamExists({ client: kinesis, maxWaitTime: 20, minDelay: 0.1, maxDelay: 0.2 }, { StreamName: stream })
      sqs.destroy()
      kinesis.destroy()

      const service = `auto-${mode}`
      const result = await runNode([...args], {
        DD_DATA_STREAMS_ENABLED: 'true',
        DD_SERVICE: service,
        DD_ENV: ENV,
        DD_TRACE_AGENT_URL: agent.url,
        PATHWISE_KINESIS_JSON_CONTEXT: 'true',
        SQS_ENDPOINT: sqsPeer.endpoint,
        KINESIS_ENDPOINT: kinesisPeer.endpoint,
        QUEUE_1: url1!,
        QUEUE_2: url2!,
        QUEUE_3: url3!,
        STREAM: stream,
      })
      assert.equal(result.code, 0, result.stderr)
      const seen = JSON.parse(result.stdout) as { firstKeys: string[]; firstContext: string; secondCarrier: string; pinnedCarrier: string; record: string }
      const carried = (json: string) => decodePathwayContext((JSON.parse(json) as Record<string, string>)[PATHWAY_KEY])?.hash

      const sqsTags = (direction: string, queue: string) => [`direction:${direction}`, `topic:${queue}`, 'type:sqs']
      const out1 = expectedHash(service, sqsTags('out', q1), 0n)
      const in1 = expectedHash(service, sqsTags('in', q1), out1)
      const out2 = expectedHash(service, sqsTags('out', q2), in1)
      const in2 = expectedHash(service, sqsTags('in', q2), out2)
      const pinned = expectedHash(service, sqsTags('out', q3), in1)
      const in3 = expectedHash(service, sqsTags('in', q3), pinned)
      const put = expectedHash(service, ['direction:out', `topic:${stream}`, 'type:kinesis'], in3)
      const got = expectedHash(service, ['direction:in', `topic:${stream}`, 'type:kinesis'], put)
      // The caller asked for no attributes and got none; the next send carried the received context.
      assert.deepEqual(seen.firstKeys, ['Body', 'MD5OfBody', 'MessageId', 'ReceiptHandle'])
      assert.equal(decodePathwayContext(seen.firstContext)?.hash, in1)
      assert.equal(carried(seen.secondCarrier), out2)
      assert.equal(carried(seen.pinnedCarrier), pinned)
      assert.equal(carried(JSON.stringify((JSON.parse(seen.record) as { _datadog: unknown })._datadog)), put)
      // Flushed by the exiting child.
      const chain = [[out1, 0n], [in1, out1], [out2, in1], [in2, out2], [pinned, in1], [in3, pinned], [put, in3], [got, put]]
      for (const [hash, parent] of chain) assert.equal((await waitForPoint(agent, service, hash)).ParentHash, parent)
    })
  }

  test('in process: a client created before the patch is covered; the undo restores send and quiets the middleware', async () => {
    const require = createRequire(import.meta.url)
    const sdk = require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs')
    const dsm: DataStreams = createDataStreams({ enabled: true, service: 'auto-undo', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const plain = new sdk.SQSClient(sqsClientConfig(sqsPeer.endpoint))
    const early = new sdk.SQSClient(sqsClientConfig(sqsPeer.endpoint))
    const originalSend = sdk.SQSClient.prototype.send
    const { QueueUrl } = await plain.send(new CreateQueueCommand({ QueueName: 'auto-undo' }))
    const receive = () => plain.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }))
    try {
      const undo = sqsInstrumentation.patch(sdk, dsm)
      await early.send(new SendMessageCommand({ QueueUrl, MessageBody: 'patched' }))
      // Taken by index: walking the receive's Messages would make its message's context current for the sends below.
      const patched = (await receive()).Messages![0]
      assert.ok(patched.MessageAttributes?._datadog, 'the early client carries the context')

      // A client that also has the plugin added by hand is instrumented once, by the first in its stack.
      const manualDsm = createDataStreams({ enabled: true, service: 'auto-manual', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
      const manual = new sdk.SQSClient(sqsClientConfig(sqsPeer.endpoint))
      manual.middlewareStack.use(pathwiseSqs(manualDsm))
      await manual.send(new SendMessageCommand({ QueueUrl, MessageBody: 'manual' }))
      manual.destroy()
      await manualDsm.shutdown()
      const [both] = (await receive()).Messages!
      const carrier = JSON.parse(both.MessageAttributes!._datadog.StringValue!) as Record<string, string>
      assert.deepEqual(Object.keys(carrier), [PATHWAY_KEY])
      assert.equal(decodePathwayContext(carrier[PATHWAY_KEY])?.hash, expectedHash('auto-manual', ['direction:out', 'topic:auto-undo', 'type:sqs'], 0n))

      undo()
      assert.equal(sdk.SQSClient.prototype.send, originalSend)
      assert.equal(Object.prototype.hasOwnProperty.call(sdk.SQSClient.prototype, 'send'), false)
      await early.send(new SendMessageCommand({ QueueUrl, MessageBody: 'after undo' }))
      const [later] = (await receive()).Messages!
      assert.equal(later.MessageAttributes, undefined)
    } finally {
      plain.destroy()
      early.destroy()
      await dsm.shutdown()
    }
  })
})
