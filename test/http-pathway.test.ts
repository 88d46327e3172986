/**
 * One pathway across an HTTP call, with real peers: Kafka (librdkafka's mock cluster) → the
 * gateway (a kafkajs consumer that POSTs each message with fetch) → HTTP → billing (a node:http
 * server that sends each request to SQS, on fauxqs) → SQS → a receiver. The gateway and billing
 * run in child processes under `-r pathwise/register` with DD_DATA_STREAMS_HTTP_ENABLED=true (the
 * gateway allowed to send the context to billing's address); the producer and the receiver are
 * instrumented here. Every hash must chain across the HTTP hop, as computed independently, with
 * dd-trace-java's HTTP edge tags.
 * Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { createDataStreams, instrumentKafkaJs, pathwiseSqs } from '../bindings/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startServiceProcess } from './helpers/service-process.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import { sqsClientConfig, startSqs, type SqsPeer } from './peers/sqs.js'
import { clusterIdOf, consumeTags, kafkajs, produceTags } from './fixtures/kafka/setup.js'
import { ENV, expectedHash, waitForPoint } from './fixtures/aws/pathways.js'

/** A service of the pathway under the automatic mode. */
const child = (script: string, env: Record<string, string>) => startServiceProcess(['-r', 'pathwise/register', `test/fixtures/http/${script}`], env)

describe('a pathway through Kafka, HTTP and SQS', () => {
  let kafka: KafkaPeer
  let sqsPeer: SqsPeer
  let agent: TestAgent

  before(async () => {
    ;[kafka, sqsPeer, agent] = await Promise.all([startKafka(), startSqs(), startAgent()])
  })
  after(async () => {
    await Promise.all([kafka.stop(), sqsPeer.stop(), agent.close()])
  })

  test('Kafka → gateway → HTTP → billing → SQS: the hashes chain across the HTTP hop', async () => {
    const sqs = new SQSClient(sqsClientConfig(sqsPeer.endpoint))
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'invoices' }))
    const common = { DD_DATA_STREAMS_ENABLED: 'true', DD_DATA_STREAMS_HTTP_ENABLED: 'true', DD_ENV: ENV, DD_TRACE_AGENT_URL: agent.url }
    const billing = child('billing.cjs', { ...common, DD_SERVICE: 'billing', SQS_ENDPOINT: sqsPeer.endpoint, QUEUE_URL: QueueUrl! })
    const port = (await billing.line(/port (\d+)\n/))[1]
    const gateway = child('gateway.cjs', {
      ...common,
      DD_SERVICE: 'gateway',
      PATHWISE_HTTP_ALLOWED_HOSTS: `127.0.0.1:${port}`,
      BROKERS: kafka.brokers.join(','),
      TOPIC: 'orders-http',
      GROUP: 'gateway',
      BILLING_URL: `http://127.0.0.1:${port}`,
    })
    await gateway.line(/ready\n/)

    const origin = createDataStreams({ enabled: true, service: 'orders', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const sink = createDataStreams({ enabled: true, service: 'invoicing', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const client = new kafkajs.Kafka({ brokers: kafka.brokers, logLevel: kafkajs.logLevel.NOTHING })
    instrumentKafkaJs(client, origin)
    const producer = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner })
    await producer.connect()
    await producer.send({ topic: 'orders-http', messages: [{ value: 'order 7' }] })
    await producer.disconnect()

    const [g, b] = await Promise.all([gateway.exit, billing.exit])
    assert.equal(g.code, 0, g.err)
    assert.equal(b.code, 0, b.err)
    assert.match(g.out, /"answer":"invoiced"/)
    sqs.middlewareStack.use(pathwiseSqs(sink))
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2 }))
    assert.equal(Messages?.[0]?.Body, 'order 7')
    sqs.destroy()
    await Promise.all([origin.shutdown(), sink.shutdown()])

    const clusterId = await clusterIdOf(kafka.brokers)
    const chain: [string, string[]][] = [
      ['orders', produceTags('orders-http', clusterId)],
      ['gateway', consumeTags('gateway', 'orders-http', clusterId)],
      ['gateway', ['direction:out', 'type:http']],
      ['billing', ['direction:in', 'type:http']],
      ['billing', ['direction:out', 'topic:invoices', 'type:sqs']],
      ['invoicing', ['direction:in', 'topic:invoices', 'type:sqs']],
    ]
    let parent = 0n
    for (const [service, tags] of chain) {
      const hash = expectedHash(service, tags, parent)
      const point = await waitForPoint(agent, service, hash)
      assert.deepEqual([[...point.EdgeTags].sort(), point.ParentHash], [[...tags].sort(), parent], `${service} ${tags.join(',')}`)
      parent = hash
    }
  })
})
