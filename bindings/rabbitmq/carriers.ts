/**
 * Where a RabbitMQ message carries the pathway context, and reading it back from every place it
 * may be (`dd-pathway-ctx-base64`, the base64 value dd-trace writes):
 *
 * - AMQP 0-9-1 (amqplib): a header, dd-trace's carrier.
 * - AMQP 1.0 (rhea): an application property, which every broker keeps; and, on a peer that takes
 *   them, a delivery annotation, dd-trace's carrier (RabbitMQ 3.10 closes the session on any
 *   message with delivery annotations, and the message is lost: rhea-link.ts writes none there).
 *   A receiver reads delivery annotations, then application properties, then message annotations.
 * - A message sent over AMQP 1.0 to RabbitMQ 3.10 and consumed over 0-9-1: its sections arrive
 *   whole in the headers `x-amqp-1.0-app-properties` and `x-amqp-1.0-message-annotations`, in their
 *   AMQP 1.0 encoding, as strings amqplib decodes as UTF-8 (binary bytes become U+FFFD, ASCII stays).
 *   The context is found there by a bounded scan (sectionContext). RabbitMQ 4 maps application
 *   properties to plain headers, where the first rule finds it.
 */
import { Buffer } from 'node:buffer'
import { PATHWAY_KEY, decodePathwayContext, extractPathwayContext, type PathwayContext } from '../pathway/context.js'
import { read } from '../common/input.js'

/** The headers RabbitMQ 3.10 gives a 0-9-1 consumer for an AMQP 1.0 message's sections, in the order read. */
const SECTION_HEADERS = ['x-amqp-1.0-app-properties', 'x-amqp-1.0-message-annotations'] as const

/** A section longer than this is not scanned (RabbitMQ's frames are 128 KiB by default). */
const MAX_SECTION_CHARS = 1 << 20
/** Occurrences of the key looked at per section. */
const MAX_MATCHES = 4
/** AMQP 1.0 type codes of a string before its length: str8-utf8 (one length byte), str32-utf8 (four). */
const STR8 = 0xa1
const STR32 = 0xb1
/** U+FFFD: what UTF-8 decoding makes of a lone type byte (0xa1, 0xb1 are no UTF-8 lead bytes). */
const REPLACED = 0xfffd

/** The context in an amqplib message's headers: the header, else the AMQP 1.0 sections RabbitMQ 3.10 forwards. Null when absent or malformed. */
export function headersContext(headers: unknown): PathwayContext | null {
  if (headers === null || typeof headers !== 'object') return null
  const ctx = extractPathwayContext(headers)
  if (ctx !== null) return ctx
  for (const name of SECTION_HEADERS) {
    const section = read(headers, name)
    if (section === undefined) continue
    const found = sectionContext(section)
    if (found !== null) return found
  }
  return null
}

/**
 * The context in an AMQP 1.0 map section's encoding, as a string (decoded as UTF-8 or latin1) or
 * bytes: the key, preceded by its length byte (21) so that a longer key ending the same way does
 * not match, then the value's type byte (str8 or str32, or U+FFFD for either after UTF-8
 * decoding), its length and that many characters, decoded as any carrier value is.
 */
export function sectionContext(section: unknown): PathwayContext | null {
  const text = typeof section === 'string' ? section : section instanceof Uint8Array ? latin1(section) : undefined
  if (text === undefined || text.length > MAX_SECTION_CHARS) return null
  let from = 0
  for (let match = 0; match < MAX_MATCHES; match++) {
    const at = text.indexOf(PATHWAY_KEY, from)
    if (at < 1) return null
    from = at + PATHWAY_KEY.length
    if (text.charCodeAt(at - 1) !== PATHWAY_KEY.length) continue
    const type = text.charCodeAt(from)
    let start = from + 2
    let length = text.charCodeAt(from + 1)
    if ((type === STR32 || type === REPLACED) && length === 0) {
      // str32: three more length bytes, the value's length in the last (a context is at most 36 characters)
      if (text.charCodeAt(from + 2) !== 0 || text.charCodeAt(from + 3) !== 0) continue
      length = text.charCodeAt(from + 4)
      start = from + 5
    } else if (type !== STR8 && type !== REPLACED) continue
    if (!(length > 0) || start + length > text.length) continue
    const ctx = decodePathwayContext(text.slice(start, start + length))
    if (ctx !== null) return ctx
  }
  return null
}

function latin1(bytes: Uint8Array): string | undefined {
  return bytes.length > MAX_SECTION_CHARS ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
}

/**
 * The context of a received AMQP 1.0 message (rhea's decoded message): its delivery annotations
 * (dd-trace's carrier), else its application properties, else its message annotations.
 */
export function messageContext(message: unknown): PathwayContext | null {
  return (
    extractPathwayContext(read(message, 'delivery_annotations')) ??
    extractPathwayContext(read(message, 'application_properties')) ??
    extractPathwayContext(read(message, 'message_annotations'))
  )
}
