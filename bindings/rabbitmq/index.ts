/** Data Streams Monitoring for RabbitMQ: amqplib (AMQP 0-9-1) and rhea (AMQP 1.0). */
export { instrumentAmqplib, amqplibPublishInstrumentation, amqplibReceiveInstrumentations } from './amqplib.js'
export { instrumentRhea, rheaInstrumentation } from './rhea.js'
