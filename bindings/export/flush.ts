import type { Core } from '../core/types.js'
import { PayloadWriter, type BucketExtras, type Payload, type PayloadMeta } from './payload.js'

/**
 * One flush: the payloads of every bucket below a bound, built a slice at a time. The core
 * writes the points' msgpack itself (`drainChunk`), a chunk of a few hundred at a time, and
 * the chunks are copied into payloads that never pass `maxBytes`, each of whole points: no
 * JS object is made per point. `flushPayloads` is a generator that yields each payload as it
 * is done, and PAUSE once a slice of `sliceMs` is spent: an asynchronous caller lets the event
 * loop run there, a synchronous one (the exit) goes straight on.
 */

/**
 * The largest payload, before compression: 8 MiB. Below the Datadog Agent's 25 MiB request limit
 * (`MaxRequestBytes`, default `25 * 1024 * 1024`, pkg/trace/config/config.go; pipeline_stats
 * bodies forwarded to several endpoints are read through it, pkg/trace/api/pipeline_stats.go), and
 * below the pathwise agent's 10 MiB body and 64 MiB decompressed (`--max-body`, DEFAULT_LIMITS in
 * agent/src/intake.ts). gzip never makes a body larger than this by more than a few hundred bytes.
 */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
/** What the core writes at a time: a few hundred points, some 50 µs of work. */
export const CHUNK_BYTES = 64 * 1024
/** Work done between two turns of the event loop. */
export const SLICE_MS = 2

export const PAUSE = Symbol('pause')

export interface FlushSource {
  core: Core
  /** Buckets numbered below this one are flushed. */
  beforeBucket: number
  /** Sketches in the sparse form where smaller: only for a destination known to read it. */
  sparse: boolean
  /** The buckets' backlogs and transaction records, drained already. */
  extras: Map<number, BucketExtras>
  meta: PayloadMeta
  /** Checkpoints the point cap dropped since the last flush. */
  droppedPoints: number
}

export interface FlushLimits {
  maxBytes: number
  chunkBytes: number
  sliceMs: number
}

const LIMITS: FlushLimits = { maxBytes: MAX_PAYLOAD_BYTES, chunkBytes: CHUNK_BYTES, sliceMs: SLICE_MS }

/**
 * The payloads of one flush (none if there is nothing to send). The core's drain starts at the
 * first step and ends when the generator does, run to its end or returned early.
 */
export function* flushPayloads(source: FlushSource, limits: FlushLimits = LIMITS): Generator<Payload | typeof PAUSE, void, undefined> {
  const { core, meta } = source
  const { maxBytes } = limits
  // buckets with backlogs or transaction records, ascending; each goes with its bucket's first segment
  const extraBuckets = [...source.extras.keys()].sort((a, b) => a - b)
  let nextExtra = 0
  let writer = new PayloadWriter(meta, source.droppedPoints)
  let sliceEnd = performance.now() + limits.sliceMs

  /** Starts a new payload when a segment with these extras and `bytes` of points would not fit in this one. */
  function* roomFor(extras: BucketExtras | undefined, bytes: number): Generator<Payload, void, undefined> {
    if (writer.fresh) return
    if (writer.wouldTake(PayloadWriter.segmentBytes(extras) + bytes) <= maxBytes) return
    yield writer.finish()
    writer = new PayloadWriter(meta, 0)
  }

  /** The buckets with extras only, below `bucket`, each a segment with no points. */
  function* extrasBefore(bucket: number): Generator<Payload, void, undefined> {
    while (nextExtra < extraBuckets.length && extraBuckets[nextExtra] < bucket) {
      const b = extraBuckets[nextExtra++]
      const extras = source.extras.get(b)
      writer.closeSegment()
      yield* roomFor(extras, 0)
      writer.openSegment(b, extras)
      writer.closeSegment()
    }
  }

  const total = core.drainBegin(source.beforeBucket, source.sparse)
  let written = 0
  try {
    for (;;) {
      const room = maxBytes - writer.wouldTake(0) - PayloadWriter.segmentBytes(undefined)
      const n = core.drainChunk(Math.max(1, Math.min(limits.chunkBytes, room)))
      if (n === 0) break
      const bucket = core.chunkBucket
      // the core's views: used before anything else calls into the core
      const bytes = core.chunkBytes()
      const ends = core.chunkEnds()
      if (writer.openBucket !== bucket) {
        yield* extrasBefore(bucket)
        writer.closeSegment()
        const extras = nextExtra < extraBuckets.length && extraBuckets[nextExtra] === bucket ? source.extras.get(extraBuckets[nextExtra++]) : undefined
        yield* roomFor(extras, ends[0])
        writer.openSegment(bucket, extras)
      }
      // as many whole points as the payload takes; the rest go on in the next one
      for (let from = 0; from < n; ) {
        const start = from === 0 ? 0 : ends[from - 1]
        let to = from
        while (to < n && writer.wouldTake(ends[to] - start) <= maxBytes) to++
        if (to === from && !writer.alone) {
          yield writer.finish()
          writer = new PayloadWriter(meta, 0)
          writer.openSegment(bucket, undefined)
          continue
        }
        // a point too large for any payload goes alone
        if (to === from) to++
        // a payload's first points foretell its size: its buffer grows once
        if (writer.points === 0) writer.reserve(Math.min(maxBytes, writer.wouldTake(((total - written - from) * bytes.length) / n)))
        writer.addPoints(bytes.subarray(start, ends[to - 1]), ends.subarray(from, to), start)
        from = to
      }
      written += n
      if (performance.now() >= sliceEnd) {
        yield PAUSE
        sliceEnd = performance.now() + limits.sliceMs
      }
    }
    yield* extrasBefore(Infinity)
    if (!writer.empty) yield writer.finish()
  } finally {
    core.drainEnd()
  }
}
