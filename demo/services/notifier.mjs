// Polls SQS `enriched-orders` and puts a notification per order on Kinesis `notifications`.
import { DeleteMessageBatchCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { aws, jitter, kinesisEndpoint, running, sleep, sqsEndpoint } from './env.mjs'

const sqs = new SQSClient({ ...aws, endpoint: sqsEndpoint })
const kinesis = new KinesisClient({ ...aws, endpoint: kinesisEndpoint, requestHandler: new NodeHttpHandler() })
const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'enriched-orders' }))
while (running.on) {
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))
  for (const m of Messages) {
    await sleep(jitter(4))
    const order = JSON.parse(m.Body)
    // Sends after a receive link to the received message (see pathwise's AWS hand-off rule).
    await kinesis.send(new PutRecordCommand({ StreamName: 'notifications', PartitionKey: order.customer, Data: new TextEncoder().encode(`order ${order.id} confirmed`) }))
  }
  if (Messages.length > 0) {
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }))
  }
}
