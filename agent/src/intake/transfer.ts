import { setImmediate as nextTurn } from 'node:timers/promises'
import { IntakePoint, type IntakeBacklog, type IntakeBucket, type IntakePayload } from '../model/payload.js'
import type { Store } from '../model/store.js'
import type { TransactionsWire } from '../model/transaction-wire.js'

/**
 * How a validated payload crosses from the decode worker to the main thread: three typed arrays,
 * transferred rather than copied, so that neither the structured clone nor the main thread's heap
 * grows with the number of buckets, points, backlogs or tags; the main thread rebuilds them a slice
 * at a time while merging them into the store.
 *
 * `numbers`, in order: the number of buckets; per bucket its start (ms), its number of points, the
 * points, its number of backlogs, the backlogs. A point: its hash and parent hash as 32-bit halves,
 * its tags, and where its cell ends in `cells`. A backlog: its tags, its value. Tags: their number,
 * then each one's offset and length in `text`. A point's cell is its three sketches (pathway, edge,
 * size) in the sketch store's compact form, as the store merges them, right after the previous
 * point's: about a byte a bin, where the dense bins of the protobufs take eight.
 */
export interface TransferPayload {
  service: string
  env: string
  version: string
  lang: string
  tracerVersion: string
  numbers: Float64Array
  /** The distinct tags, UTF-8, one after the other: tracers repeat the same few on every point. */
  text: Uint8Array
  /** The points' cells, one after the other. */
  cells: Uint8Array
  /** The buckets' transaction records, where the payload has some. */
  transactions?: TransactionsWire
  /** Checkpoints the tracer's point cap dropped since its previous payload (pathwise's `PathwiseDroppedPoints`). */
  droppedPoints: number
}

/** A payload whose transfer form would be larger than TransferWriter's limit. */
export class TransferTooLarge extends Error {}

/** A typed array that doubles as it fills, up to `maxLength` (throws TransferTooLarge past it): its memory is outside the worker's heap limit. */
class Growing<A extends Float64Array | Uint8Array> {
  length = 0
  constructor(
    private array: A,
    private readonly make: (size: number) => A,
    private readonly maxLength: number,
  ) {}

  /** The array, with room for `n` more. */
  room(n: number): A {
    if (this.length + n > this.maxLength) throw new TransferTooLarge()
    let size = this.array.length
    while (this.length + n > size) size = Math.min(size * 2, this.maxLength)
    if (size !== this.array.length) {
      const bigger = this.make(size)
      bigger.set(this.array)
      this.array = bigger
    }
    return this.array
  }

  push(n: number): void {
    this.room(1)[this.length++] = n
  }

  add(at: number, n: number): void {
    this.array[at] += n
  }

  /** What was written: a view whose ArrayBuffer is the one to transfer. */
  view(): A {
    return this.array.subarray(0, this.length) as A
  }
}

/**
 * Writes a TransferPayload's numbers, text and cells, in the order of the comment above, each in at
 * most `maxBytes`: the worker's heap limit bounds the decoded payload, not these.
 */
export class TransferWriter {
  private readonly numbers: Growing<Float64Array>
  private readonly text: Growing<Uint8Array>
  private readonly cells: Growing<Uint8Array>
  /** Where each distinct tag is in the text, and its UTF-8 length. */
  private readonly tagSpans = new Map<string, [number, number]>()
  private readonly encoder = new TextEncoder()
  /** Where the count of the list being written (buckets, points or backlogs) is. */
  private countAt = 0

  constructor(maxBytes: number) {
    this.numbers = new Growing(new Float64Array(1024), (n) => new Float64Array(n), Math.floor(maxBytes / 8))
    this.text = new Growing(new Uint8Array(1024), (n) => new Uint8Array(n), maxBytes)
    this.cells = new Growing(new Uint8Array(4096), (n) => new Uint8Array(n), maxBytes)
    this.numbers.push(0)
  }

  bucket(startMs: number): void {
    this.numbers.add(0, 1)
    this.numbers.push(startMs)
    this.startList()
  }

  /** A point and its cell (CompactWriter's, copied). */
  point(hash: bigint, parent: bigint, tags: readonly string[], cell: Uint8Array): void {
    this.numbers.add(this.countAt, 1)
    this.numbers.push(Number(hash >> 32n))
    this.numbers.push(Number(hash & 0xffffffffn))
    this.numbers.push(Number(parent >> 32n))
    this.numbers.push(Number(parent & 0xffffffffn))
    this.tags(tags)
    this.cells.room(cell.length).set(cell, this.cells.length)
    this.cells.length += cell.length
    this.numbers.push(this.cells.length)
  }

  /** After a bucket's points. */
  backlogs(): void {
    this.startList()
  }

  backlog(tags: readonly string[], value: number): void {
    this.numbers.add(this.countAt, 1)
    this.tags(tags)
    this.numbers.push(value)
  }

  finish(): { numbers: Float64Array; text: Uint8Array; cells: Uint8Array } {
    return { numbers: this.numbers.view(), text: this.text.view(), cells: this.cells.view() }
  }

  private startList(): void {
    this.countAt = this.numbers.length
    this.numbers.push(0)
  }

  private tags(tags: readonly string[]): void {
    this.numbers.push(tags.length)
    for (const tag of tags) {
      let span = this.tagSpans.get(tag)
      if (span === undefined) {
        const at = this.text.length
        // At most 3 bytes of UTF-8 per UTF-16 unit.
        const { written } = this.encoder.encodeInto(tag, this.text.room(tag.length * 3).subarray(at))
        this.text.length += written
        span = [at, written]
        this.tagSpans.set(tag, span)
      }
      this.numbers.push(span[0])
      this.numbers.push(span[1])
    }
  }
}

/** Most points a slice holds: the store merges a slice in one call into the sketch store, about 1 µs a point. */
const MAX_SLICE_POINTS = 1024

/**
 * The payload a slice at a time, each slice holding what was rebuilt within `budgetMs` (the
 * caller's work on a slice, done while the generator is suspended, does not count), and at most
 * MAX_SLICE_POINTS points.
 */
export function* payloadSlices(transfer: TransferPayload, budgetMs: number): Generator<IntakePayload> {
  const { numbers, text, cells } = transfer
  const decoder = new TextDecoder()
  /** Each distinct tag list is decoded and sorted once: the same few are on every point. */
  const lists = new Map<string, { tags: string[]; sorted: string }>()
  let at = 0
  let cellEnd = 0
  const next = (): number => numbers[at++]
  const tagList = (): { tags: string[]; sorted: string } => {
    const n = next()
    const spans = numbers.subarray(at, (at += 2 * n))
    const key = spans.join(',')
    let list = lists.get(key)
    if (!list) {
      const tags: string[] = []
      for (let i = 0; i < n; i++) tags.push(decoder.decode(text.subarray(spans[2 * i], spans[2 * i] + spans[2 * i + 1])))
      lists.set(key, (list = { tags, sorted: [...tags].sort().join(',') }))
    }
    return list
  }
  const tags = (): string[] => tagList().tags
  const point = (): IntakePoint => {
    const [hashHi, hashLo, parentHi, parentLo] = [next(), next(), next(), next()]
    const { tags, sorted } = tagList()
    const start = cellEnd
    cellEnd = next()
    return new IntakePoint(hashHi, hashLo, parentHi, parentLo, tags, sorted, cells, start, cellEnd)
  }
  const backlog = (): IntakeBacklog => ({ tags: tags(), value: next() })

  const header = { service: transfer.service, env: transfer.env, version: transfer.version, lang: transfer.lang, tracerVersion: transfer.tracerVersion }
  let slice: IntakePayload = { ...header, buckets: [] }
  let started = performance.now()
  let points = 0
  for (let buckets = next(); buckets > 0; buckets--) {
    let bucket: IntakeBucket = { startMs: next(), points: [], backlogs: [] }
    slice.buckets.push(bucket)
    for (const part of ['points', 'backlogs'] as const) {
      for (let n = next(); n > 0; n--) {
        if (part === 'points') bucket.points.push(point())
        else bucket.backlogs.push(backlog())
        if (++points >= MAX_SLICE_POINTS || performance.now() - started >= budgetMs) {
          yield slice
          // The next slice goes on with the same bucket.
          bucket = { startMs: bucket.startMs, points: [], backlogs: [] }
          slice = { ...header, buckets: [bucket] }
          started = performance.now()
          points = 0
        }
      }
    }
  }
  yield slice
}

/** A slice is rebuilt in about this long, and merged in less: about the longest a payload holds up the event loop. */
const SLICE_MS = 5

/** Merges a payload into the store a slice at a time, letting the event loop run between slices; `also` sees each slice too. */
export async function ingestInSlices(store: Store, transfer: TransferPayload, also?: (slice: IntakePayload) => void): Promise<void> {
  for (const slice of payloadSlices(transfer, SLICE_MS)) {
    store.ingest(slice)
    also?.(slice)
    await nextTurn()
  }
}
