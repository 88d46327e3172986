/** pathwise for Node.js: the DataStreams API with AsyncLocalStorage context and export over node:http. */
import type { DataStreamsOptions } from './config.js'
import { createDataStreamsFor, type DataStreams } from './data-streams.js'
import { nodePlatform } from './node/platform.js'

export function createDataStreams(options: DataStreamsOptions = {}): DataStreams {
  return createDataStreamsFor(options, nodePlatform())
}

export type { DataStreamsOptions } from './config.js'
export type { DataStreams, CheckpointNode, CheckpointOptions, CheckpointTiming, Carrier } from './data-streams.js'
export {
  PathwayContext,
  PATHWAY_KEY,
  LEGACY_PATHWAY_KEY,
  encodePathwayContext,
  encodePathwayContextBytes,
  decodePathwayContext,
  decodePathwayContextBytes,
  extractPathwayContext,
} from './context.js'
export { createCore } from './core/create.js'
export type { Core, Sketch, Backend, DrainedBucket, DrainedPoint } from './core/types.js'
export { VERSION } from './version.js'
export { extractFromHeaders, injectIntoHeaders, type HeadersLike } from './http-carrier.js'
export { autoInstrumentation, type AutoInstrumentation } from './instrument/auto-global.js'
export { pathwiseSqs, pathwiseKinesis, type PathwiseKinesisOptions, type AwsPlugin } from './aws/index.js'
export { instrumentKafkaJs, instrumentConfluent, setHeaderInjection, type KafkaInstrumentOptions } from './kafka/index.js'
export { contextOf, withMessageContext } from './received-messages.js'
