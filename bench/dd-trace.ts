/**
 * dd-trace's Data Streams processor, standalone: what its Kafka plugins call, without the tracer.
 * Checkpoints go to `DataStreamsProcessor#setCheckpoint` with an explicit parent, header values
 * through `encodePathwayContextBase64` / `decodePathwayContextBase64` (pathway.js), flushes
 * through `onInterval` (its own serialization) into a writer that does what its
 * `DataStreamsWriter` does before the HTTP request: its msgpack encoder (see DdFlushed for when
 * it refuses), then gzip at level 1 (synchronously here, so that the thread pool's latency is
 * not timed).
 */
import { createRequire } from 'node:module'
import { gzipSync } from 'node:zlib'
import { encode as msgpack } from '@msgpack/msgpack'

const require = createRequire(import.meta.url)

// The tracer's global, where the processor registers its flush for the process's exit; the
// tracer is not loaded, so nothing ever calls it.
const DD = Symbol.for('dd-trace')
;(globalThis as Record<symbol, unknown>)[DD] ??= { beforeExitHandlers: new Set() }

const { DataStreamsProcessor } = require('dd-trace/packages/dd-trace/src/datastreams/processor.js')
const pathway = require('dd-trace/packages/dd-trace/src/datastreams/pathway.js')
const { encode: encodeMsgpack } = require('dd-trace/packages/dd-trace/src/msgpack/index.js')
const { LogCollapsingLowestDenseDDSketch } = require('dd-trace/vendor/dist/@datadog/sketches-js')

export const DD_TRACE_VERSION: string = require('dd-trace/package.json').version

/** dd-trace's context: 8-byte hash Buffer, times in ns. */
export interface DdContext {
  hash: Buffer
  pathwayStartNs: number
  edgeStartNs: number
}

export interface DdProcessor {
  setCheckpoint(edgeTags: string[], span: null, parent: DdContext | null, payloadSize?: number): DdContext
  onInterval(): void
  writer: { flush(payload: unknown): void }
  /** Time buckets, each with its stats points (keyed by the hash Buffer itself). */
  buckets: Map<number, { checkpoints: Map<Buffer, unknown> }>
}

export interface DdSketch {
  accept(value: number): void
}

export const encodeDdContext: (ctx: DdContext) => string = pathway.encodePathwayContextBase64
export const decodeDdContext: (value: string | Buffer) => DdContext | undefined = pathway.decodePathwayContextBase64
/** dd-trace-js hashes with SHA-256 (not FNV-1), behind an LRU cache of 500 (service, env, tags, parent) entries. */
export const ddPathwayHash: (service: string, env: string, edgeTags: string[], parent: Buffer) => Buffer = pathway.computePathwayHash

export function newDdSketch(): DdSketch {
  return new LogCollapsingLowestDenseDDSketch()
}

/** What the last flush produced, for the flush case's checks and notes. */
export interface DdFlushed {
  /** Bytes of msgpack, and of the gzip of it. */
  msgpackBytes: number
  gzipBytes: number
  points: number
  /**
   * dd-trace's msgpack encoder stops at 50 MiB (its writer then drops the payload, logging an
   * error): from the first payload it refused on, @msgpack/msgpack (pathwise's encoder) stands in.
   */
  ownEncoderRefused: boolean
}

/**
 * A processor with no flush timer to speak of (the longest interval a Node timer takes, unref'd)
 * and a writer that encodes and compresses but sends nothing.
 */
export function ddProcessor(service: string, env: string): { processor: DdProcessor; flushed: DdFlushed; encode: (payload: unknown) => Uint8Array } {
  const processor: DdProcessor = new DataStreamsProcessor({
    dsmEnabled: true,
    service,
    env,
    flushInterval: 2 ** 31 - 1,
    url: 'http://127.0.0.1:9',
  })
  const flushed: DdFlushed = { msgpackBytes: 0, gzipBytes: 0, points: 0, ownEncoderRefused: false }
  const encode = (payload: unknown): Uint8Array => {
    if (!flushed.ownEncoderRefused) {
      try {
        return encodeMsgpack(payload)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_MSGPACK_CHUNK_OVERFLOW') throw err
        flushed.ownEncoderRefused = true
      }
    }
    return msgpack(payload, { useBigInt64: true })
  }
  processor.writer = {
    flush(payload: unknown) {
      const bytes = encode(payload)
      flushed.msgpackBytes = bytes.byteLength
      flushed.gzipBytes = gzipSync(bytes, { level: 1 }).byteLength
      const stats = (payload as { Stats: { Stats: unknown[] }[] }).Stats
      flushed.points = stats.reduce((n, b) => n + b.Stats.length, 0)
    },
  }
  return { processor, flushed, encode }
}
