/**
 * A payload's transaction records (dd-trace-js 6.21, dd-trace-go and dd-trace-java send them per
 * bucket): `Transactions`, records of `[checkpoint id u8][time in ns, int64 big-endian][id length u8][id]`,
 * and `TransactionCheckpointIds`, entries of `[id u8][name length u8][name]`. The decode worker only
 * copies both fields of each bucket, when they are binary, into one buffer that crosses to the main
 * thread with the rest of the payload; `transactionRecords` reads them there. Whatever the bytes
 * are, reading them never throws and never reads past them: a truncated entry ends its field, a
 * record whose checkpoint id has no name is skipped, and the rest of the payload is not affected.
 */

/** Each bucket's fields as spans of `bytes`: `[records at, records length, names at, names length]` per bucket. */
export interface TransactionsWire {
  bytes: Uint8Array
  spans: Float64Array
}

/** Collects the fields in the worker, as the payload's buckets are validated. */
export class TransactionsWireWriter {
  private readonly parts: Uint8Array[] = []
  private readonly spans: number[] = []
  private length = 0

  /** One bucket's fields, as decoded: anything but two binaries is left out (a tracer without transactions sends neither). */
  bucket(records: unknown, names: unknown): void {
    if (!(records instanceof Uint8Array) || !(names instanceof Uint8Array) || records.length === 0) return
    this.spans.push(this.length, records.length, this.length + records.length, names.length)
    this.parts.push(records, names)
    this.length += records.length + names.length
  }

  /** The fields of every bucket, in one buffer of their own (transferable), or undefined when there were none. */
  finish(): TransactionsWire | undefined {
    if (this.parts.length === 0) return undefined
    const bytes = new Uint8Array(this.length)
    let at = 0
    for (const part of this.parts) {
      bytes.set(part, at)
      at += part.length
    }
    return { bytes, spans: Float64Array.from(this.spans) }
  }
}

export interface TransactionRecord {
  checkpoint: string
  id: string
  /** When the tracer recorded it, in ms since the epoch (a double: sub-ms kept to about 0.25 µs). */
  ms: number
}

export interface RecordCounts {
  /** Fields whose last entry was cut short (the rest of the field ignored). */
  malformed: number
  /** Records naming a checkpoint id their bucket does not map. */
  unknownCheckpoint: number
}

const RECORD_HEADER = 10
const TWO_32 = 0x1_0000_0000

/** The records of every bucket of `wire`, in order, read with bounds checks. */
export function* transactionRecords(wire: TransactionsWire, counts: RecordCounts): Generator<TransactionRecord> {
  const { bytes, spans } = wire
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const decoder = new TextDecoder()
  for (let s = 0; s + 3 < spans.length; s += 4) {
    const names = checkpointNames(bytes, spans[s + 2], spans[s + 2] + spans[s + 3], decoder, counts)
    const end = spans[s] + spans[s + 1]
    let at = spans[s]
    while (at < end) {
      if (at + RECORD_HEADER > end || at + RECORD_HEADER + bytes[at + 9] > end) {
        counts.malformed++
        break
      }
      const idLength = bytes[at + 9]
      const checkpoint = names[bytes[at]]
      if (checkpoint === undefined) counts.unknownCheckpoint++
      else {
        const ns = view.getInt32(at + 1) * TWO_32 + view.getUint32(at + 5)
        yield { checkpoint, id: decoder.decode(bytes.subarray(at + RECORD_HEADER, at + RECORD_HEADER + idLength)), ms: ns / 1e6 }
      }
      at += RECORD_HEADER + idLength
    }
  }
}

/** The names by id (0 to 255) of one bucket's `TransactionCheckpointIds`; the first entry for an id wins. */
function checkpointNames(bytes: Uint8Array, from: number, end: number, decoder: TextDecoder, counts: RecordCounts): (string | undefined)[] {
  const names = new Array<string | undefined>(256)
  let at = from
  while (at < end) {
    if (at + 2 > end || at + 2 + bytes[at + 1] > end) {
      counts.malformed++
      break
    }
    const length = bytes[at + 1]
    names[bytes[at]] ??= decoder.decode(bytes.subarray(at + 2, at + 2 + length))
    at += 2 + length
  }
  return names
}
