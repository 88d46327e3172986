/**
 * `pathwise/core`: the cores themselves and the wire they feed, for benchmarks, tools and the
 * agent package (the bucket size and the payload codec are defined here once). Internals of the
 * DataStreams API, so kept off the main entry: their interface may change between minor versions.
 */
export { createCore, type CreateCoreOptions } from './processor/create-core.js'
export type { Core, CoreOptions, Sketch, Backend } from './core/types.js'
export { BUCKET_MS } from './core/constants.js'
export { encodePayload, encodeStatsPayload, type ExportBacklog, type ExportBucket, type ExportPoint, type Payload, type PayloadMeta } from './export/payload.js'
export { createSketchStore } from './processor/create-sketch-store.js'
export type { CellBytes, SketchStore, SketchStoreOptions } from './core/sketch-store.js'
export { CompactReader, CompactWriter } from './ts/compact-cells.js'
export { valueOf as sketchKeyValue } from './ts/sketch.js'
export { GAMMA as SKETCH_GAMMA, MIN_INDEXABLE_VALUE } from './core/sketch-constants.js'
