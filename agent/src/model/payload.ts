import { CompactReader } from 'pathwise/core'
import type { SketchBins } from './sketch.js'

/**
 * A pipeline stats payload as the store takes it: wire format section 4 decoded and validated
 * (intake/decode.ts), hashes as unsigned 64-bit bigints, bucket starts in ms, and each point's
 * three sketches (pathway, edge, size) as one cell in the sketch store's compact form: the bytes
 * `cells[start, end)`, the points of a payload one after the other. The main thread rebuilds it
 * from what the decode worker hands over (intake/transfer.ts), a slice at a time, so one payload
 * may reach the store as several.
 */

/** Sketches of a point's cell, in order. */
export const PATHWAY = 0
export const EDGE = 1
export const SIZE = 2
export const CELL_WIDTH = 3

const reader = new CompactReader(CELL_WIDTH)
const views = [PATHWAY, EDGE, SIZE].map(
  (i): SketchBins => ({
    get zeroCount() {
      return reader.zeroCount(i)
    },
    forEachBin: (each) => reader.forEachBin(i, each),
  }),
) as [SketchBins, SketchBins, SketchBins]

export class IntakePoint {
  constructor(
    /** The hash and parent hash as unsigned 32-bit halves. */
    readonly hashHi: number,
    readonly hashLo: number,
    readonly parentHi: number,
    readonly parentLo: number,
    /** Shared by the payload's points with the same tags: not to be changed. */
    readonly edgeTags: string[],
    /** The tags sorted and joined by commas (shared as the tags are). */
    readonly sortedTags: string,
    /** The payload's cells; this point's is `cells[start, end)`. */
    readonly cells: Uint8Array,
    readonly start: number,
    readonly end: number,
  ) {}

  get hash(): bigint {
    return (BigInt(this.hashHi) << 32n) | BigInt(this.hashLo)
  }

  get parent(): bigint {
    return (BigInt(this.parentHi) << 32n) | BigInt(this.parentLo)
  }

  /** Its pathway, edge and size sketches, read now: valid until the next call on any point. */
  sketches(): readonly [pathway: SketchBins, edge: SketchBins, size: SketchBins] {
    reader.read(this.cells, this.start, this.end)
    return views
  }
}

export interface IntakeBacklog {
  tags: string[]
  value: number
}

export interface IntakeBucket {
  /** Milliseconds since the epoch. */
  startMs: number
  points: IntakePoint[]
  backlogs: IntakeBacklog[]
}

export interface IntakePayload {
  service: string
  env: string
  version: string
  lang: string
  tracerVersion: string
  buckets: IntakeBucket[]
}
