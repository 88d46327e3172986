/**
 * `pathwise/core`: the cores themselves, for benchmarks, tools and other aggregators. Internals of
 * the DataStreams API, so kept off the main entry: their interface may change between minor versions.
 */
export { createCore, type CreateCoreOptions } from './create.js'
export type { Core, CoreOptions, Sketch, Backend, DrainedBucket, DrainedPoint } from './types.js'
