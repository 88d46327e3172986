/** Data Streams Monitoring for NATS: nats.js 2 (`nats`), core and JetStream. */
export { instrumentNats, natsInstrumentation } from './connection.js'
