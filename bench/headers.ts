import assert from 'node:assert/strict'
import { PathwayContext, decodePathwayContext, encodePathwayContext } from '../bindings/pathway/context.js'
import { decodeDdContext } from './dd-trace.js'

/**
 * `count` pathway header values as Kafka delivers them (Buffers of the base64 text): one
 * upstream hash, the messages produced at different times of the last few seconds. dd-trace
 * must read the same context from each as pathwise does, or the comparison would be unfair.
 */
export function headerValues(count: number, hashHi: number, hashLo: number): Buffer[] {
  const now = Date.now()
  return Array.from({ length: count }, (_, i) => {
    const ctx = new PathwayContext(hashHi, hashLo, now - 5_000 - i * 1.37, now - 40 - (i % 50))
    const value = Buffer.from(encodePathwayContext(ctx))
    const ours = decodePathwayContext(value)!
    const theirs = decodeDdContext(value)!
    assert.equal(theirs.hash.readUInt32LE(0), ours.hashLo)
    assert.equal(theirs.hash.readUInt32LE(4), ours.hashHi)
    assert.equal(theirs.pathwayStartNs, ours.pathwayStartMs * 1e6)
    assert.equal(theirs.edgeStartNs, ours.edgeStartMs * 1e6)
    return value
  })
}
