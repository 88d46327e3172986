import { gunzipSync } from 'node:zlib'
import { Decoder, type DecoderOptions } from '@msgpack/msgpack'
import { CompactWriter } from 'pathwise/core'
import { CELL_WIDTH, EDGE, PATHWAY, SIZE, type IntakePayload } from '../model/payload.js'
import { readSketchProto, SketchError } from '../model/sketch-proto.js'
import { TransactionsWireWriter } from '../model/transaction-wire.js'
import { IntakeError, type IntakeLimits } from './body.js'
import { payloadSlices, TransferTooLarge, TransferWriter, type TransferPayload } from './transfer.js'

/**
 * A `POST /v0.1/pipeline_stats` body, once read (body.ts): gunzip, msgpack and the schema of wire
 * format section 4. Validation is complete before anything is stored, so a bad payload leaves no
 * trace. Lenient where the tracers differ (dd-trace-java omits EdgeTags on first nodes and
 * Backlogs when it has none, writes no TimestampType, adds PrimaryTag; Go writes nil for empty
 * lists; Java may write a hash as a signed int64; dd-trace-js sends a produce backlog with no
 * offset as nil), strict on the types of everything the agent reads.
 *
 * Decoding (`decodeToTransfer`) runs in a worker thread (decode-pool.ts) and hands over a validated
 * payload as flat typed arrays; `payloadSlices` turns those back into payloads for the store, a
 * slice at a time.
 */

/** What a point takes at the least, rounded down to a power of two: see `decoderLimits`. */
const MIN_POINT_BYTES = 32
/** An array may hold this many elements whatever the payload's size (tags in a small payload). */
const MIN_ARRAY_LIMIT = 64
/** StatsPayload's maps are structs of a dozen fields or fewer. */
const MAX_MAP_KEYS = 64
/** Names, tags: no tracer sends longer strings. */
const MAX_STRING_BYTES = 64 * 1024
/** A sketch: a tracer's collapses at 2048 bins (about 20 KB); the sketch decoder accepts up to 65,536 (under 1 MB sparse). */
const MAX_BIN_BYTES = 1024 * 1024
/**
 * Any binary: a bucket's Transactions is the longest (dd-trace-go and pathwise cap it at 2.3 MB a
 * bucket; dd-trace-js has no cap). The decoder hands binaries over as views of the body, not copies.
 */
const MAX_BINARY_BYTES = 8 * 1024 * 1024
/** A payload has no extension types; msgpack's timestamp, the one standard one, takes 12 bytes at most. */
const MAX_EXT_BYTES = 16
/**
 * A decoded payload's transfer form, per decompressed byte: a real one takes under 1 (a point of 38
 * bytes or more takes under 90, a sketch bin of 8 about 1), one of empty tags up to 16.
 */
const MAX_TRANSFER_RATIO = 4
const MIN_TRANSFER_BYTES = 1024 * 1024

/**
 * The msgpack decoder's limits for a payload of `size` bytes, decompressed. The decoder allocates an
 * array's slots when it reads its length, before its elements: a header claiming 64M elements costs
 * 512 MB of slots, and 64M one-byte elements (empty maps) as many objects. A real payload's longest
 * arrays are a bucket's points, each a map of at least 38 bytes (Hash, PathwayLatency, EdgeLatency),
 * so no real array is longer than `size / 32`: a declared length beyond that is refused before
 * anything is allocated, and the slots of one that is not cost at most `size / 4` bytes, even when
 * it claims more elements than the bytes left. Maps, strings, binaries and extensions have fixed
 * limits from what tracers send. What else a payload under these limits can cost (many small
 * containers) is bounded by the decode worker's heap limit (decode-pool.ts).
 */
export function decoderLimits(size: number): DecoderOptions {
  return {
    maxArrayLength: Math.max(MIN_ARRAY_LIMIT, Math.floor(size / MIN_POINT_BYTES)),
    maxMapLength: MAX_MAP_KEYS,
    maxStrLength: MAX_STRING_BYTES,
    maxBinLength: MAX_BINARY_BYTES,
    maxExtLength: MAX_EXT_BYTES,
  }
}

/** Writes each point's sketches as one cell; emptied at each payload (one refused may leave a cell begun). */
const cellWriter = new CompactWriter(CELL_WIDTH)

/** Gunzip, msgpack and schema of a body: what the decode worker runs. Throws IntakeError for a payload to refuse. */
export function decodeToTransfer(body: Uint8Array, maxDecompressedBytes: number): TransferPayload {
  if (body.length === 0) throw new IntakeError('empty body')
  const raw = gunzipLimited(body, maxDecompressedBytes)
  let decoded: unknown
  try {
    decoded = new Decoder({ useBigInt64: true, ...decoderLimits(raw.length) }).decode(raw)
  } catch (err) {
    throw new IntakeError(`bad msgpack: ${oneLine((err as Error).message)}`)
  }
  try {
    cellWriter.clear()
    return transferOf(decoded, new TransferWriter(Math.max(MIN_TRANSFER_BYTES, MAX_TRANSFER_RATIO * raw.length)), cellWriter)
  } catch (err) {
    if (err instanceof SketchError) throw new IntakeError(`wrong schema: ${err.message}`)
    if (err instanceof TransferTooLarge) throw new IntakeError(`payload too costly to decode: over ${MAX_TRANSFER_RATIO} times its decompressed size`, 413)
    throw err
  }
}

/** Decodes a body in this thread, all at once: for tools and tests (the agent decodes in its worker). */
export async function decodePipelineStats(body: Uint8Array, limits: IntakeLimits): Promise<IntakePayload> {
  const [payload] = payloadSlices(decodeToTransfer(body, limits.maxDecompressedBytes), Infinity)
  return payload
}

/** zlib's default output chunk. */
const GUNZIP_CHUNK = 16 * 1024

/**
 * Gunzip into one buffer sized from the gzip trailer (the decompressed size, mod 2^32), within the
 * limit: zlib's default 16 KB chunks, concatenated at the end, leave malloc's arenas holding about
 * what a bomb decompressed to after it is gone. The trailer is only a hint: a wrong one costs more
 * chunks, never more than the limit.
 */
function gunzipLimited(body: Uint8Array, max: number): Buffer {
  const size = body.length >= 4 ? new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(body.byteLength - 4, true) : 0
  // One byte over, so that zlib ends on a buffer not full, rather than allocating another to find it has no more.
  const chunkSize = Math.min(max + 1, Math.max(size + 1, GUNZIP_CHUNK))
  try {
    return gunzipSync(body, { maxOutputLength: max, chunkSize })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new IntakeError(`decompressed body too large: over the limit of ${max} bytes`, 413)
    }
    throw new IntakeError(`bad gzip: ${oneLine((err as Error).message)}`)
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 200)
}

type Obj = Record<string, unknown>

function schemaError(path: string, what: string): IntakeError {
  return new IntakeError(`wrong schema: ${path} ${what}`)
}

function isMap(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function mapAt(v: unknown, path: string): Obj {
  if (!isMap(v)) throw schemaError(path, 'is not a map')
  return v
}

function stringAt(o: Obj, key: string, path: string, required: boolean): string {
  const v = o[key]
  if (v === undefined || v === null) {
    if (required) throw schemaError(`${path}${key}`, 'is missing')
    return ''
  }
  if (typeof v !== 'string') throw schemaError(`${path}${key}`, 'is not a string')
  return v
}

/** An array field; missing or nil counts as empty where `required` is false. */
function listAt(o: Obj, key: string, path: string, required: boolean): unknown[] {
  const v = o[key]
  if (v === undefined || v === null) {
    if (required) throw schemaError(`${path}${key}`, 'is missing')
    return []
  }
  if (!Array.isArray(v)) throw schemaError(`${path}${key}`, 'is not an array')
  return v
}

function stringsAt(o: Obj, key: string, path: string): string[] {
  const list = listAt(o, key, path, false)
  list.forEach((s, i) => {
    if (typeof s !== 'string') throw schemaError(`${path}${key}[${i}]`, 'is not a string')
  })
  return list as string[]
}

/** A 64-bit hash: unsigned, or signed as Java writes it (then read as its two's complement). */
function hashAt(o: Obj, key: string, path: string, required: boolean): bigint {
  const v = o[key]
  if (v === undefined || v === null) {
    if (required) throw schemaError(`${path}${key}`, 'is missing')
    return 0n
  }
  if (typeof v === 'bigint') return BigInt.asUintN(64, v)
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt.asUintN(64, BigInt(v))
  throw schemaError(`${path}${key}`, 'is not a 64-bit integer')
}

/** An optional count: a non-negative integer, 0 when missing. */
function countAt(o: Obj, key: string): number {
  const v = o[key]
  if (v === undefined || v === null) return 0
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
  if (typeof v === 'bigint' && v >= 0n) return Number(v)
  throw schemaError(key, 'is not a non-negative integer')
}

/** A sketch field into sketch `i` of the cell being written; a missing one that is not required is empty. */
function sketchAt(o: Obj, key: string, path: string, required: boolean, cell: CompactWriter, i: number): void {
  const v = o[key]
  if (v === undefined || v === null) {
    if (required) throw schemaError(`${path}${key}`, 'is missing')
    return
  }
  if (!(v instanceof Uint8Array)) throw schemaError(`${path}${key}`, 'is not binary')
  if (v.length > MAX_BIN_BYTES) throw schemaError(`${path}${key}`, `is over ${MAX_BIN_BYTES} bytes`)
  try {
    readSketchProto(v, cell, i)
  } catch (err) {
    if (err instanceof SketchError) throw schemaError(`${path}${key}`, `is not a valid DDSketch: ${err.message}`)
    throw err
  }
}

function transferOf(v: unknown, out: TransferWriter, cell: CompactWriter): TransferPayload {
  const o = mapAt(v, 'payload')
  const transactions = new TransactionsWireWriter()
  listAt(o, 'Stats', '', true).forEach((b, i) => bucketOf(b, `Stats[${i}].`, out, cell, transactions))
  return {
    service: stringAt(o, 'Service', '', true),
    env: stringAt(o, 'Env', '', false),
    version: stringAt(o, 'Version', '', false),
    lang: stringAt(o, 'Lang', '', false),
    tracerVersion: stringAt(o, 'TracerVersion', '', false),
    droppedPoints: countAt(o, 'PathwiseDroppedPoints'),
    ...out.finish(),
    transactions: transactions.finish(),
  }
}

function bucketOf(v: unknown, path: string, out: TransferWriter, cell: CompactWriter, transactions: TransactionsWireWriter): void {
  const o = mapAt(v, path.slice(0, -1))
  const start = o.Start
  let startNs: bigint
  if (typeof start === 'bigint' && start >= 0n) startNs = start
  else if (typeof start === 'number' && Number.isSafeInteger(start) && start >= 0) startNs = BigInt(start)
  else throw schemaError(`${path}Start`, start === undefined ? 'is missing' : 'is not a non-negative integer (ns)')
  out.bucket(Number(startNs / 1_000_000n))
  listAt(o, 'Stats', path, false).forEach((p, i) => pointOf(p, `${path}Stats[${i}].`, out, cell))
  out.backlogs()
  listAt(o, 'Backlogs', path, false).forEach((b, i) => backlogOf(b, `${path}Backlogs[${i}].`, out))
  // Read on the main thread (model/transaction-wire.ts), where malformed bytes cost only themselves.
  transactions.bucket(o.Transactions, o.TransactionCheckpointIds)
}

function pointOf(v: unknown, path: string, out: TransferWriter, cell: CompactWriter): void {
  const o = mapAt(v, path.slice(0, -1))
  const hash = hashAt(o, 'Hash', path, true)
  const parent = hashAt(o, 'ParentHash', path, false)
  const edgeTags = stringsAt(o, 'EdgeTags', path)
  sketchAt(o, 'PathwayLatency', path, true, cell, PATHWAY)
  sketchAt(o, 'EdgeLatency', path, true, cell, EDGE)
  sketchAt(o, 'PayloadSize', path, false, cell, SIZE)
  out.point(hash, parent, edgeTags, cell.endCell())
}

/** A backlog, skipped when its offset is nil or negative (Kafka's "no offset"). */
function backlogOf(v: unknown, path: string, out: TransferWriter): void {
  const o = mapAt(v, path.slice(0, -1))
  const tags = stringsAt(o, 'Tags', path)
  const raw = o.Value
  if (raw === undefined || raw === null) return
  let value: number
  if (typeof raw === 'bigint') value = Number(raw)
  else if (typeof raw === 'number' && Number.isFinite(raw)) value = raw
  else throw schemaError(`${path}Value`, 'is not a number')
  if (value >= 0) out.backlog(tags, value)
}
