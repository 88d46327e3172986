/**
 * The pathway header in the two shapes Kafka headers take in Node: an object (kafkajs and the
 * confluent KafkaJS API; a repeated header is an array of values) and a list of one-key objects
 * (the node-rdkafka-style API). Values arrive as Buffers of the base64 text.
 * Writing always copies: the caller's headers are never changed.
 */
import { Buffer } from 'node:buffer'
import { LEGACY_PATHWAY_KEY, PATHWAY_KEY, decodePathwayContext, decodePathwayContextBytes, type PathwayContext } from '../context.js'

/** A copy of the caller's header object with the pathway header set (replacing one forwarded from an earlier message). */
export function withPathwayHeader(headers: unknown, value: string): Record<string, unknown> {
  // Object.assign, not a spread: adding a key to a spread copy costs V8 about 2 µs, this about 30 ns.
  const copy: Record<string, unknown> = headers !== null && typeof headers === 'object' ? Object.assign({}, headers as Record<string, unknown>) : {}
  copy[PATHWAY_KEY] = value
  return copy
}

/** A copy of the caller's header list without forwarded pathway headers, with this one last. */
export function headerListWithPathway(headers: unknown, value: string): unknown[] {
  const out: unknown[] = []
  if (Array.isArray(headers)) {
    for (const header of headers) {
      if (header !== null && typeof header === 'object' && Object.prototype.hasOwnProperty.call(header, PATHWAY_KEY)) continue
      out.push(header)
    }
  }
  out.push({ [PATHWAY_KEY]: value })
  return out
}

/** The context in a header list: the last base64 header, else the last legacy one. Null when absent or malformed. */
export function pathwayFromHeaderList(headers: unknown): PathwayContext | null {
  if (!Array.isArray(headers)) return null
  let encoded: unknown
  let legacy: unknown
  for (const header of headers) {
    if (header === null || typeof header !== 'object') continue
    const h = header as Record<string, unknown>
    if (h[PATHWAY_KEY] !== undefined) encoded = h[PATHWAY_KEY]
    else if (h[LEGACY_PATHWAY_KEY] !== undefined) legacy = h[LEGACY_PATHWAY_KEY]
  }
  if (encoded !== undefined) return decodePathwayContext(encoded)
  if (legacy === undefined) return null
  return typeof legacy === 'string' ? decodePathwayContextBytes(Buffer.from(legacy, 'latin1')) : decodePathwayContextBytes(legacy)
}
