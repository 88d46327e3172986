// Takes orders and publishes them to Kafka `orders` (kafkajs). Plain application code:
// pathwise instruments it from `node --import pathwise/register`.
import { Kafka, Partitioners, logLevel } from 'kafkajs'
import { brokers, jitter, running, sleep } from './env.mjs'

const kafka = new Kafka({ clientId: 'orders-api', brokers, logLevel: logLevel.NOTHING })
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
await producer.connect()
let id = 0
while (running.on) {
  const order = { id: ++id, items: Array.from({ length: 1 + (id % 7) }, (_, i) => ({ sku: `sku-${i}`, qty: 1 + (i % 3) })) }
  await producer.send({ topic: 'orders', messages: [{ key: String(id % 16), value: JSON.stringify(order) }] })
  await sleep(jitter(25))
}
await producer.disconnect()
