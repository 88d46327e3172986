/** Data Streams Monitoring for Kafka: kafkajs 2.x and @confluentinc/kafka-javascript (both of its APIs). */
export { instrumentKafkaJs, kafkajsInstrumentation } from './kafkajs.js'
export { instrumentConfluent, confluentInstrumentation } from './confluent.js'
export { setHeaderInjection, type KafkaInstrumentOptions } from './injection.js'
