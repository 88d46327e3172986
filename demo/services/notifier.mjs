// Polls SQS `enriched-orders`, puts a notification per order on Kinesis `notifications` and
// publishes its confirmation email to the RabbitMQ exchange `emails` (amqplib), for the mailer.
import amqplib from 'amqplib'
import { DeleteMessageBatchCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { aws, jitter, kinesisEndpoint, rabbitMqUrl, running, sleep, sqsEndpoint } from './env.mjs'

const sqs = new SQSClient({ ...aws, endpoint: sqsEndpoint })
const kinesis = new KinesisClient({ ...aws, endpoint: kinesisEndpoint, requestHandler: new NodeHttpHandler() })
const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'enriched-orders' }))
// The emails go out once RabbitMQ is up (it starts after the other peers).
let channel
const rabbitMq = rabbitMqUrl.then(async (url) => {
  const connection = await amqplib.connect(url)
  const ready = await connection.createChannel()
  await ready.assertExchange('emails', 'direct', { durable: false })
  channel = ready
  return connection
})
while (running.on) {
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))
  for (const m of Messages) {
    await sleep(jitter(4))
    const order = JSON.parse(m.Body)
    // Sends after a receive link to the received message (see pathwise's AWS hand-off rule).
    await kinesis.send(new PutRecordCommand({ StreamName: 'notifications', PartitionKey: order.customer, Data: new TextEncoder().encode(`order ${order.id} confirmed`) }))
    channel?.publish('emails', 'order.confirmed', Buffer.from(JSON.stringify({ to: order.customer, subject: `order ${order.id} confirmed` })))
  }
  if (Messages.length > 0) {
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }))
  }
}
if (channel !== undefined) await (await rabbitMq).close()
