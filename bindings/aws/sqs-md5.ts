/**
 * MD5OfMessageAttributes as SQS computes it: over the attributes it returns, sorted by name, each
 * as length-prefixed (4 bytes, big-endian) name, data type and value, the value preceded by its
 * transport type (1 String, 2 Binary). A receive that trims `_datadog` recomputes it, so that the
 * caller gets the digest of the attributes it sees, as from SQS.
 */
import { Buffer } from 'node:buffer'
import { createHash, type Hash } from 'node:crypto'

export interface SqsAttribute {
  DataType?: string
  StringValue?: string
  BinaryValue?: Uint8Array
}

export function md5OfMessageAttributes(attributes: Record<string, SqsAttribute>): string {
  const hash = createHash('md5')
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name]
    field(hash, Buffer.from(name, 'utf8'))
    field(hash, Buffer.from(attribute.DataType ?? '', 'utf8'))
    if (attribute.StringValue !== undefined) {
      hash.update(Uint8Array.of(1))
      field(hash, Buffer.from(attribute.StringValue, 'utf8'))
    } else if (attribute.BinaryValue !== undefined) {
      hash.update(Uint8Array.of(2))
      field(hash, attribute.BinaryValue)
    }
  }
  return hash.digest('hex')
}

function field(hash: Hash, bytes: Uint8Array): void {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  hash.update(length)
  hash.update(bytes)
}
