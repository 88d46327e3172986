/** pathwise for Node.js: the DataStreams API with AsyncLocalStorage context and export over node:http. */
import type { DataStreamsOptions } from './api/config.js'
import type { DataStreams } from './api/data-streams.js'
import { createDataStreamsFor } from './processor/create.js'
import { nodePlatform } from './node/platform.js'

export function createDataStreams(options: DataStreamsOptions = {}): DataStreams {
  return createDataStreamsFor(options, nodePlatform())
}

export * from './shared-exports.js'
export { autoInstrumentation, type AutoInstrumentation } from './register/auto-global.js'
export { pathwiseSqs, pathwiseSns, pathwiseEventBridge, pathwiseKinesis, type PathwiseKinesisOptions, type AwsPlugin } from './aws/index.js'
export { instrumentKafkaJs, instrumentConfluent, setHeaderInjection, type KafkaInstrumentOptions } from './kafka/index.js'
export { instrumentNats } from './nats/index.js'
export { instrumentHttp, type HttpHopsOptions } from './http/hops.js'
export { instrumentAmqplib, instrumentRhea } from './rabbitmq/index.js'
export { instrumentBullmq } from './bullmq/index.js'
export { contextOf, withMessageContext } from './instrument/received-messages.js'
