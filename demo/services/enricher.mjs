// Reads `orders` (group enricher), looks the customer up, has the order priced by the pricing
// service (an HTTP call: the pathway goes on there), and sends the enriched order to SQS.
import { SQSClient, GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { Kafka, logLevel } from 'kafkajs'
import { aws, brokers, jitter, running, sleep, sqsEndpoint } from './env.mjs'

const sqs = new SQSClient({ ...aws, endpoint: sqsEndpoint })
const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'enriched-orders' }))
const kafka = new Kafka({ clientId: 'enricher', brokers, logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: 'enricher', maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 500 })
await consumer.connect()
await consumer.subscribe({ topic: 'orders', fromBeginning: true })
await consumer.run({
  eachMessage: async ({ message }) => {
    await sleep(jitter(8))
    const order = JSON.parse(message.value.toString())
    // Priced when the pricing service answers; the order goes on without a price when it does not.
    const quote = await fetch(`${process.env.PRICING_URL}/quote`, { method: 'POST', body: message.value }).then((r) => r.json(), () => ({}))
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ ...order, customer: `c-${order.id % 100}`, total: quote.total }) }))
  },
})
while (running.on) await sleep(200)
await consumer.disconnect()
