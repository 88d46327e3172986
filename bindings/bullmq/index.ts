/** Data Streams Monitoring for BullMQ 6, through BullMQ's own telemetry interface. */
export { instrumentBullmq, bullmqInstrumentation } from './bullmq.js'
