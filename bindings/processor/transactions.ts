/**
 * Transaction tracking, as dd-trace-js 6.21's `trackTransaction` (datastreams/processor.js) and
 * dd-trace-go's `TrackTransaction` send it: per 10 s bucket, `Transactions` is the concatenation of
 * `[checkpoint id u8][wall time in ns, int64 big-endian][id length u8][id, UTF-8]` records, and
 * `TransactionCheckpointIds` the `[id u8][name length u8][name, UTF-8]` of every checkpoint name
 * registered so far. Records are written into one growing buffer per bucket, in their wire form,
 * so a call allocates nothing once the buffer has grown. Runtime-neutral.
 */

/** Checkpoint names a process may register (ids 1 to 254; 0 is reserved): dd-trace-js's and dd-trace-go's limit. */
export const MAX_CHECKPOINT_NAMES = 254
/** Record bytes one 10 s bucket may hold: dd-trace-go's `maxTransactionBytesPerPeriod` (about 5,000 UUID-sized ids a second). */
export const MAX_TRANSACTION_BYTES_PER_BUCKET = 2_300_000
/** Buckets held while nothing flushes (an edge isolate that never calls flush()): past them, records are dropped. */
export const MAX_PENDING_TRANSACTION_BUCKETS = 6
/** Longest id and name on the wire, in UTF-8 bytes (one length byte). */
const MAX_WIRE_BYTES = 255
/**
 * UTF-16 units kept of a string before encoding: the first 255 bytes of its UTF-8 come from its
 * first 255 units, and one more keeps a surrogate pair at the cut whole. A huge string costs no more.
 */
const MAX_UNITS = MAX_WIRE_BYTES + 1
const RECORD_HEADER = 10
const FIRST_BUFFER = 1024

export type TrackOutcome = 'recorded' | 'names-full' | 'bucket-full'

interface BucketRecords {
  bytes: Uint8Array
  length: number
}

export class TransactionLog {
  private readonly ids = new Map<string, number>()
  /** The registry's wire form, `[id][length][name]` per name, and its length. */
  private names = new Uint8Array(FIRST_BUFFER)
  private namesLength = 0
  private readonly buckets = new Map<number, BucketRecords>()
  /** Where a non-ASCII string is encoded: 3 bytes at most per UTF-16 unit kept. */
  private readonly scratch = new Uint8Array(MAX_UNITS * 3)
  private readonly encoder = new TextEncoder()
  private readonly decoder = new TextDecoder()

  /**
   * Records `transactionId` at `checkpointName` at `nowMs` (ms since the epoch, fractions kept) in
   * bucket `bucket`. Both strings must be non-empty (the caller checks). Never throws.
   */
  track(transactionId: string, checkpointName: string, nowMs: number, bucket: number): TrackOutcome {
    const checkpoint = this.idOf(checkpointName)
    if (checkpoint === undefined) return 'names-full'
    let records = this.buckets.get(bucket)
    if (records === undefined) {
      if (this.buckets.size >= MAX_PENDING_TRANSACTION_BUCKETS) return 'bucket-full'
      this.buckets.set(bucket, (records = { bytes: new Uint8Array(FIRST_BUFFER), length: 0 }))
    }
    if (records.length + RECORD_HEADER + 1 > MAX_TRANSACTION_BYTES_PER_BUCKET) return 'bucket-full'
    const at = records.length
    const bytes = roomFor(records, RECORD_HEADER + MAX_WIRE_BYTES)
    const idLength = this.writeCut(transactionId, bytes, at + RECORD_HEADER, false)
    if (at + RECORD_HEADER + idLength > MAX_TRANSACTION_BYTES_PER_BUCKET) return 'bucket-full'
    bytes[at] = checkpoint
    writeNanoseconds(bytes, at + 1, nowMs)
    bytes[at + 9] = idLength
    records.length = at + RECORD_HEADER + idLength
    return 'recorded'
  }

  /** The registry as `TransactionCheckpointIds` carries it: every name registered so far. */
  checkpointIds(): Uint8Array {
    return this.names.slice(0, this.namesLength)
  }

  /** Whether a bucket below `beforeBucket` holds records. */
  has(beforeBucket: number): boolean {
    for (const bucket of this.buckets.keys()) if (bucket < beforeBucket) return true
    return false
  }

  /** Removes and returns the records of every bucket below `beforeBucket`. */
  drain(beforeBucket: number): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>()
    for (const [bucket, records] of this.buckets) {
      if (bucket < beforeBucket) {
        out.set(bucket, records.bytes.slice(0, records.length))
        this.buckets.delete(bucket)
      }
    }
    return out
  }

  /** The checkpoint's id, registered now if new; undefined once 254 names are registered. */
  private idOf(name: string): number | undefined {
    // A short name is its own key; a long one is keyed by what the wire keeps of it, a new flat string that holds no huge one alive.
    const key = name.length <= MAX_UNITS ? name : this.decoder.decode(this.scratch.subarray(0, this.writeCut(name, this.scratch, 0, true)))
    const known = this.ids.get(key)
    if (known !== undefined || this.ids.size >= MAX_CHECKPOINT_NAMES) return known
    const id = this.ids.size + 1
    this.ids.set(key, id)
    if (this.namesLength + 2 + MAX_WIRE_BYTES > this.names.length) {
      const bigger = new Uint8Array(Math.min(this.names.length * 2, MAX_CHECKPOINT_NAMES * (2 + MAX_WIRE_BYTES)))
      bigger.set(this.names.subarray(0, this.namesLength))
      this.names = bigger
    }
    const at = this.namesLength
    const length = this.writeCut(name, this.names, at + 2, true)
    this.names[at] = id
    this.names[at + 1] = length
    this.namesLength = at + 2 + length
    return id
  }

  /**
   * Writes the UTF-8 of `text`, cut at 255 bytes, at `to[at]` (which has room for 255) and returns
   * its length. As dd-trace-js cuts them: an id at exactly 255 bytes (a byte subarray), a name
   * before the first character that would not fit whole (as a string write into 255 bytes does).
   */
  private writeCut(text: string, to: Uint8Array, at: number, wholeCharacters: boolean): number {
    const n = Math.min(text.length, MAX_WIRE_BYTES)
    let i = 0
    for (; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0x80) break
      to[at + i] = c
    }
    if (i === text.length || i === MAX_WIRE_BYTES) return i
    const kept = text.length > MAX_UNITS ? text.slice(0, MAX_UNITS) : text
    if (wholeCharacters) return this.encoder.encodeInto(kept, to.subarray(at, at + MAX_WIRE_BYTES)).written
    const length = Math.min(this.encoder.encodeInto(kept, this.scratch).written, MAX_WIRE_BYTES)
    to.set(this.scratch.subarray(0, length), at)
    return length
  }
}

/** The bucket's buffer with room for `n` more bytes, doubled as needed. */
function roomFor(records: BucketRecords, n: number): Uint8Array {
  const need = records.length + n
  if (need > records.bytes.length) {
    let size = records.bytes.length
    while (size < need) size *= 2
    const bigger = new Uint8Array(size)
    bigger.set(records.bytes.subarray(0, records.length))
    records.bytes = bigger
  }
  return records.bytes
}

const TWO_16 = 0x1_0000
const TWO_32 = 0x1_0000_0000

/**
 * Writes `ms` (ms since the epoch, with a fraction) as whole nanoseconds, a big-endian int64, with
 * no BigInt: the product is split so that every partial result is an exact double.
 */
export function writeNanoseconds(to: Uint8Array, at: number, ms: number): void {
  const whole = Math.floor(ms)
  const fraction = Math.round((ms - whole) * 1e6)
  const high = Math.floor(whole / TWO_16) * 1e6 // ns of the high part, divided by 2^16: exact, below 2^46
  const low = (high % TWO_16) * TWO_16 + (whole % TWO_16) * 1e6 + fraction // below 2^37: exact
  const hi = Math.floor(high / TWO_16) + Math.floor(low / TWO_32)
  const lo = low % TWO_32
  to[at] = hi >>> 24
  to[at + 1] = (hi >>> 16) & 0xff
  to[at + 2] = (hi >>> 8) & 0xff
  to[at + 3] = hi & 0xff
  to[at + 4] = lo >>> 24
  to[at + 5] = (lo >>> 16) & 0xff
  to[at + 6] = (lo >>> 8) & 0xff
  to[at + 7] = lo & 0xff
}
