// Reads `orders` (group billing) with the confluent client, too slowly to keep up: its lag grows.
import ConfluentKafka from '@confluentinc/kafka-javascript'
import { brokers, jitter, running, sleep } from './env.mjs'

const { Kafka, logLevel } = ConfluentKafka.KafkaJS
const kafka = new Kafka({ kafkaJS: { brokers, logLevel: logLevel.NOTHING } })
const consumer = kafka.consumer({ kafkaJS: { groupId: 'billing', fromBeginning: true, sessionTimeout: 6000, heartbeatInterval: 500 } })
await consumer.connect()
await consumer.subscribe({ topic: 'orders' })
await consumer.run({
  eachMessage: async () => {
    await sleep(jitter(60))
  },
})
while (running.on) await sleep(200)
await consumer.disconnect()
