/** Data Streams Monitoring for Kafka: kafkajs 2.x and @confluentinc/kafka-javascript (both of its APIs). */
export { instrumentKafkaJs, kafkajsInstrumentation, type KafkaInstrumentOptions } from './kafkajs.js'
export { instrumentConfluent, confluentInstrumentation } from './confluent.js'
export { setHeaderInjection } from './injection.js'
