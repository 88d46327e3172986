/**
 * A core's drain read back for tests: the chunks as the core wrote them (`drainChunks`), and the
 * points decoded from them with @msgpack/msgpack (`drainPoints`), grouped by bucket.
 */
import { decodeMulti } from '@msgpack/msgpack'
import type { Core } from '../../bindings/core/types.js'
import type { ExportPoint } from '../../bindings/export/payload.js'

export interface DrainedChunk {
  bucket: number
  bytes: Uint8Array
  ends: number[]
}

export interface DrainedBucket {
  bucket: number
  points: ExportPoint[]
}

/** Drains the buckets below `beforeBucket`, `maxBytes` a chunk: every chunk, copied. */
export function drainChunks(core: Core, beforeBucket: number, sparse = false, maxBytes = 64 * 1024): DrainedChunk[] {
  const out: DrainedChunk[] = []
  core.drainBegin(beforeBucket, sparse)
  try {
    while (core.drainChunk(maxBytes) > 0) out.push({ bucket: core.chunkBucket, bytes: core.chunkBytes().slice(), ends: [...core.chunkEnds()] })
  } finally {
    core.drainEnd()
  }
  return out
}

/** Drains the buckets below `beforeBucket`: their points decoded, by bucket (ascending). */
export function drainPoints(core: Core, beforeBucket: number, sparse = false): DrainedBucket[] {
  const out: DrainedBucket[] = []
  for (const chunk of drainChunks(core, beforeBucket, sparse)) {
    let last = out[out.length - 1]
    if (last === undefined || last.bucket !== chunk.bucket) out.push((last = { bucket: chunk.bucket, points: [] }))
    for (const p of decodeMulti(chunk.bytes, { useBigInt64: true }) as Iterable<Record<string, unknown>>) last.points.push(pointOf(p))
  }
  return out
}

function pointOf(p: Record<string, unknown>): ExportPoint {
  const hash = p.Hash as bigint
  const parent = p.ParentHash as bigint
  return {
    edgeTags: p.EdgeTags as string[],
    hashHi: Number(hash >> 32n),
    hashLo: Number(hash & 0xffffffffn),
    parentHi: Number(parent >> 32n),
    parentLo: Number(parent & 0xffffffffn),
    pathwayLatency: p.PathwayLatency as Uint8Array,
    edgeLatency: p.EdgeLatency as Uint8Array,
    payloadSize: p.PayloadSize as Uint8Array,
    timestampType: p.TimestampType as ExportPoint['timestampType'],
  }
}
