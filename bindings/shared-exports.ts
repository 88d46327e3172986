/** What both builds export beside their own `createDataStreams`, so code importing `pathwise` runs on either. */
export type { DataStreamsOptions } from './api/config.js'
export type { DataStreams, DataStreamsStats, CheckpointNode, CheckpointOptions, CheckpointTiming, Carrier } from './api/data-streams.js'
export {
  PathwayContext,
  PATHWAY_KEY,
  LEGACY_PATHWAY_KEY,
  encodePathwayContext,
  encodePathwayContextBytes,
  decodePathwayContext,
  decodePathwayContextBytes,
  extractPathwayContext,
} from './pathway/context.js'
export type { Backend } from './core/types.js'
export { VERSION } from './api/version.js'
export { extractFromHeaders, injectIntoHeaders, type HeadersLike } from './pathway/http-carrier.js'
