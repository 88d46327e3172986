/**
 * The `_datadog` carrier of AWS messages: a JSON object holding the pathway context under
 * `dd-pathway-ctx-base64`, next to whatever a tracer wrote there (its trace headers), which is kept.
 * SQS carries it as the StringValue of a message attribute, Kinesis (opt-in) inside a JSON record.
 */
import { LEGACY_PATHWAY_KEY, PATHWAY_KEY, extractPathwayContext, type PathwayContext } from '../pathway/context.js'

export const DATADOG_KEY = '_datadog'

/**
 * Length of the encoded context for today's timestamps (20 bytes in base64): what a payload size
 * counts before the checkpoint that makes the context.
 */
export const ENCODED_CONTEXT_CHARS = 28

const KEY_PREFIX = `"${PATHWAY_KEY}":"`
const NEW_CARRIER = '{' + KEY_PREFIX

/** The start of the carrier to write: the other keys of the one the message already has, if any, and the opening of ours. */
export function carrierPrefix(existing?: Record<string, unknown>): string {
  if (existing === undefined) return NEW_CARRIER
  const { [PATHWAY_KEY]: _context, [LEGACY_PATHWAY_KEY]: _legacy, ...others } = existing
  const text = JSON.stringify(others)
  return text === '{}' ? NEW_CARRIER : text.slice(0, -1) + ',' + KEY_PREFIX
}

/** An existing carrier's JSON object, or null when it holds none (it is then someone else's, and left as it is). */
export function parseCarrier(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text)
    return isPlainObject(value) ? value : null
  } catch {
    return null
  }
}

/** The carrier's text: the prefix and the encoded context. */
export function closeCarrier(prefix: string, encoded: string): string {
  return prefix + encoded + '"}'
}

/** Bytes of the carrier's text once closed, all of it ASCII but what the other keys hold. */
export function carrierBytes(prefixBytes: number): number {
  return prefixBytes + ENCODED_CONTEXT_CHARS + 2
}

/** The context in a carrier's text, or null (then the checkpoint starts a new pathway). Never throws. */
export function readCarrier(text: string): PathwayContext | null {
  return readCarrierValue(parseCarrier(text))
}

/** The context in a parsed carrier, or null. */
export function readCarrierValue(value: unknown): PathwayContext | null {
  return isPlainObject(value) ? extractPathwayContext(value) : null
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
