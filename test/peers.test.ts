/**
 * The test peers themselves (test/peers/), without pathwise: the librdkafka mock cluster (3 brokers,
 * kafkajs and the confluent client produce and consume), fauxqs (SQS) and kinesis-local listen on
 * 127.0.0.1 only and round-trip what the tests rely on, and no peer outlives the process that started it.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { KafkaJS } from '@confluentinc/kafka-javascript'
import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis'
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { Kafka, logLevel, Partitioners, type IHeaders } from 'kafkajs'
import { startPeersInAnotherProcess } from './peers/another-process.js'
import { FAST_CONSUMER, startKafka, type KafkaPeer } from './peers/kafka.js'
import { createActiveStream, kinesisClientConfig, startKinesis, type KinesisPeer } from './peers/kinesis.js'
import { accepts } from './peers/ports.js'
import { sqsClientConfig, startSqs, type SqsPeer } from './peers/sqs.js'

const unique = (prefix: string): string => `${prefix}-${randomUUID()}`
const portOf = (address: string): number => Number(address.split(':').pop())

/**
 * A promise plus the function that settles it, for "wait until N messages";
 * it rejects after `timeoutMs` so a lost message fails the test instead of
 * hanging it (and the cleanup in `finally` still runs).
 */
function deferred(timeoutMs = 20_000): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((settle, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing arrived within ${timeoutMs} ms`)), timeoutMs)
    resolve = () => {
      clearTimeout(timer)
      settle()
    }
  })
  return { promise, resolve }
}

// Concurrent: most of the time goes to waiting (peer start-up, the mock's
// 3 s group join), not CPU.
describe('test peers', { concurrency: true }, () => {
  describe('kafka mock cluster', { concurrency: true }, () => {
    let kafka: KafkaPeer
    before(async () => {
      kafka = await startKafka()
    })
    after(() => kafka?.stop())

    test('has 3 brokers, on 127.0.0.1 only', async () => {
      assert.equal(kafka.brokers.length, 3)
      for (const broker of kafka.brokers) {
        assert.match(broker, /^127\.0\.0\.1:\d+$/)
        assert.equal(await accepts(portOf(broker), '127.0.0.2'), false)
      }
    })

    test('kafkajs produces with headers, consumes in a group and commits', async () => {
      // The only logs here are the harmless LeaveGroup parse error (see
      // kafka.ts); real failures surface as rejected promises.
      const client = new Kafka({ clientId: 'peers-test', brokers: kafka.brokers, logLevel: logLevel.NOTHING })
      const topic = unique('kafkajs')
      const groupId = unique('kafkajs-group')
      const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner })
      const consumer = client.consumer({ groupId, ...FAST_CONSUMER })
      const admin = client.admin()
      try {
        await producer.connect()
        await producer.send({
          topic,
          messages: [
            { key: 'a', value: 'first', headers: { 'x-text': 'one', 'x-bytes': Buffer.from([0, 1, 2]) } },
            { key: 'b', value: 'second', headers: { 'x-text': 'two' } },
          ],
        })

        const received: { partition: number; offset: string; value: string; headers: IHeaders }[] = []
        const all = deferred()
        await consumer.connect()
        await consumer.subscribe({ topics: [topic], fromBeginning: true })
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            received.push({ partition, offset: message.offset, value: String(message.value), headers: message.headers ?? {} })
            if (received.length === 2) all.resolve()
          },
        })
        await all.promise

        const byValue = new Map(received.map((record) => [record.value, record]))
        const first = byValue.get('first')?.headers
        assert.ok(first && Buffer.isBuffer(first['x-text']) && Buffer.isBuffer(first['x-bytes']))
        assert.equal(first['x-text'].toString(), 'one')
        assert.deepEqual([...first['x-bytes']], [0, 1, 2])
        assert.equal(String(byValue.get('second')?.headers['x-text']), 'two')

        // A group's committed offset is the next one to read, per partition.
        const next = new Map<number, number>()
        for (const { partition, offset } of received) {
          next.set(partition, Math.max(next.get(partition) ?? 0, Number(offset) + 1))
        }
        const commits = [...next].map(([partition, offset]) => ({ topic, partition, offset: String(offset) }))
        await consumer.commitOffsets(commits)
        await admin.connect()
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
        for (const { partition, offset } of commits) {
          assert.equal(committed?.partitions.find((p) => p.partition === partition)?.offset, offset)
        }
      } finally {
        await Promise.all([consumer.disconnect(), producer.disconnect(), admin.disconnect()])
      }
    })

    test('confluent KafkaJS API produces and consumes', async () => {
      const client = new KafkaJS.Kafka({ kafkaJS: { brokers: kafka.brokers, logLevel: KafkaJS.logLevel.ERROR } })
      const topic = unique('confluent')
      const producer = client.producer()
      const consumer = client.consumer({ kafkaJS: { groupId: unique('confluent-group'), fromBeginning: true, ...FAST_CONSUMER } })
      try {
        await producer.connect()
        await producer.send({
          topic,
          messages: [{ value: 'with-header', headers: { 'x-text': 'one' } }, { value: 'bare' }],
        })

        const received = new Map<string, KafkaJS.IHeaders | undefined>()
        const all = deferred()
        await consumer.connect()
        await consumer.subscribe({ topics: [topic] })
        await consumer.run({
          eachMessage: async ({ message }) => {
            received.set(String(message.value), message.headers)
            if (received.size === 2) all.resolve()
          },
        })
        await all.promise

        const headers = received.get('with-header')
        assert.ok(headers && Buffer.isBuffer(headers['x-text']))
        assert.equal(headers['x-text'].toString(), 'one')
        assert.equal(received.get('bare'), undefined)
      } finally {
        await Promise.all([consumer.disconnect(), producer.disconnect()])
      }
    })
  })

  describe('fauxqs (SQS)', () => {
    let sqs: SqsPeer
    let client: SQSClient
    before(async () => {
      sqs = await startSqs()
      client = new SQSClient(sqsClientConfig(sqs.endpoint))
    })
    after(async () => {
      client?.destroy()
      await sqs?.stop()
    })

    test('listens on 127.0.0.1 only', async () => {
      assert.equal(await accepts(portOf(sqs.endpoint), '127.0.0.2'), false)
    })

    test('round-trips a _datadog message attribute', async () => {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: unique('queue') }))
      const context = JSON.stringify({ 'dd-pathway-ctx-base64': 'AAECAwQFBgc=' })
      await client.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: 'hello',
          MessageAttributes: { _datadog: { DataType: 'String', StringValue: context } },
        }),
      )
      const { Messages } = await client.send(
        new ReceiveMessageCommand({ QueueUrl, MessageAttributeNames: ['_datadog'], WaitTimeSeconds: 1 }),
      )
      assert.equal(Messages?.length, 1)
      assert.equal(Messages[0]?.Body, 'hello')
      assert.deepEqual(Messages[0]?.MessageAttributes?._datadog, { DataType: 'String', StringValue: context })
    })
  })

  describe('kinesis-local', () => {
    let kinesis: KinesisPeer
    let client: KinesisClient
    before(async () => {
      kinesis = await startKinesis()
      client = new KinesisClient(kinesisClientConfig(kinesis.endpoint))
    })
    after(async () => {
      client?.destroy()
      await kinesis?.stop()
    })

    test('listens on 127.0.0.1 only', async () => {
      assert.equal(await accepts(portOf(kinesis.endpoint), '127.0.0.2'), false)
    })

    test('puts a record and gets it back with its arrival time', async () => {
      const StreamName = unique('stream')
      await createActiveStream(client, StreamName)
      const data = Buffer.from(JSON.stringify({ hello: 'kinesis' }))
      const putAt = Date.now()
      const { ShardId, SequenceNumber } = await client.send(new PutRecordCommand({ StreamName, PartitionKey: 'key', Data: data }))
      const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType: 'TRIM_HORIZON' }))
      const { Records } = await client.send(new GetRecordsCommand({ ShardIterator }))
      assert.equal(Records?.length, 1)
      const [record] = Records
      assert.equal(record?.SequenceNumber, SequenceNumber)
      assert.equal(record?.PartitionKey, 'key')
      assert.deepEqual(Buffer.from(record?.Data ?? []), data)
      assert.ok(record?.ApproximateArrivalTimestamp instanceof Date)
      assert.ok(Math.abs(record.ApproximateArrivalTimestamp.getTime() - putAt) < 5_000)
    })
  })

  test('peers exit when the process that started them is killed', async () => {
    const harness = new URL('./peers/', import.meta.url).href
    const script = `
      const [{ startKafka }, { startSqs }, { startKinesis }] = await Promise.all([
        import('${harness}kafka.ts'), import('${harness}sqs.ts'), import('${harness}kinesis.ts'),
      ]);
      const [kafka, sqs, kinesis] = await Promise.all([startKafka(), startSqs(), startKinesis()]);
      const ports = [...kafka.brokers, sqs.endpoint, kinesis.endpoint].map((address) => Number(address.split(':').pop()));
      console.log(JSON.stringify(ports));
    `
    const parent = startPeersInAnotherProcess(script)
    try {
      const ports = JSON.parse(await parent.firstLine) as number[]
      assert.equal(ports.length, 5)
      for (const port of ports) assert.ok(await accepts(port), `port ${port} should be open while the parent lives`)

      parent.kill()
      const deadline = Date.now() + 5_000
      let open = ports
      while (open.length > 0 && Date.now() < deadline) {
        await sleep(50)
        open = (await Promise.all(open.map(async (port) => ((await accepts(port)) ? [port] : [])))).flat()
      }
      assert.deepEqual(open, [], 'no peer outlives its parent')
    } finally {
      // Only matters when an assertion above failed before the kill.
      parent.kill()
    }
  })
})
