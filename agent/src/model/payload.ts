import type { Sketch } from './sketch.js'

/**
 * A pipeline stats payload as the store takes it: wire format section 4 decoded and validated
 * (intake/decode.ts), hashes as unsigned 64-bit bigints, sketches as DDSketches, bucket starts in
 * ms. The main thread rebuilds it from what the decode worker hands over (intake/transfer.ts), a
 * slice at a time, so one payload may reach the store as several.
 */

export interface IntakePoint {
  hash: bigint
  parent: bigint
  edgeTags: string[]
  pathway: Sketch
  edge: Sketch
  size: Sketch
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
