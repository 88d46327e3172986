/**
 * The pathway context in a NATS message's headers, under `dd-pathway-ctx-base64`: read from a
 * delivered message's headers, and written into a publish's header block. nats.js hands a publish's
 * headers to the protocol only to encode them, so pathwise gives it a block of bytes of its own:
 * the caller's headers (their own encoding, left unchanged) with the context's line added, or just
 * that line. The caller's headers object is never changed.
 */
import { Buffer } from 'node:buffer'
import { PATHWAY_KEY, decodePathwayContext, type PathwayContext } from '../pathway/context.js'
import { read } from '../common/input.js'

/** nats.js's `Match.IgnoreCase`: a header written by a client that canonicalizes names still reads. */
const IGNORE_CASE = 2
const PREFIX = 'NATS/1.0\r\n'
const CRLF = '\r\n'

/** Bytes the context's line adds to a header block (today's 28-character value). */
export const PATHWAY_LINE_BYTES = PATHWAY_KEY.length + 2 + 28 + CRLF.length

/** The context a delivered message's headers carry (nats.js `MsgHdrs`), or null. Never throws. */
export function contextFromHeaders(headers: unknown): PathwayContext | null {
  if (headers === undefined || headers === null) return null
  const get = read(headers, 'get')
  if (typeof get !== 'function') return null
  try {
    let value: unknown = get.call(headers, PATHWAY_KEY)
    if (value === '') value = get.call(headers, PATHWAY_KEY, IGNORE_CASE)
    return typeof value === 'string' && value !== '' ? decodePathwayContext(value) : null
  } catch {
    return null // headers that cannot be read carry no context
  }
}

const NONE = new Uint8Array(0)

/** What nats.js's protocol reads of a publish's headers: their encoding. */
export interface HeaderBlock {
  encode(): Uint8Array
}

/**
 * The encoding of the caller's headers (an empty array when there are none), or undefined when
 * they cannot be encoded or are not a NATS header block: the publish then goes as the caller made it.
 */
export function callerBlock(headers: unknown): Uint8Array | undefined {
  if (headers === undefined || headers === null) return NONE
  const encode = read(headers, 'encode')
  if (typeof encode !== 'function') return undefined
  try {
    const bytes: unknown = encode.call(headers)
    return bytes instanceof Uint8Array ? bytes : undefined
  } catch {
    return undefined
  }
}

/**
 * The header block to publish: the caller's block (from `callerBlock`) with any context line it
 * held replaced by this one, or a block of this line alone. Undefined for a caller's block that is
 * not `NATS/1.0…` ending in an empty line.
 */
export function blockWithContext(caller: Uint8Array, value: string): HeaderBlock | undefined {
  const line = `${PATHWAY_KEY}: ${value}${CRLF}`
  if (caller.length === 0) return fixedBlock(Buffer.from(`${PREFIX}${line}${CRLF}`, 'latin1'))
  // latin1 keeps every byte as one character, so the caller's values go back out byte for byte.
  const text = Buffer.from(caller.buffer, caller.byteOffset, caller.byteLength).toString('latin1')
  if (!text.startsWith('NATS/') || !text.endsWith(CRLF + CRLF)) return undefined
  let head = text.slice(0, -CRLF.length)
  if (head.toLowerCase().includes(`${CRLF}${PATHWAY_KEY}:`)) {
    head = head
      .split(CRLF)
      .filter((l) => !l.toLowerCase().startsWith(`${PATHWAY_KEY}:`))
      .join(CRLF)
  }
  return fixedBlock(Buffer.from(`${head}${line}${CRLF}`, 'latin1'))
}

function fixedBlock(bytes: Uint8Array): HeaderBlock {
  return { encode: () => bytes }
}
