import type { IncomingMessage } from 'node:http'
import { gunzip } from 'node:zlib'
import { decode } from '@msgpack/msgpack'
import { decodeSketch, emptySketch, SketchError, type Sketch } from './sketch.js'

/**
 * `POST /v0.1/pipeline_stats`: reading the body within limits, gunzip, msgpack and the schema of
 * wire format section 4. Validation is complete before anything is stored, so a bad payload
 * leaves no trace. Lenient where the tracers differ (dd-trace-java omits EdgeTags on first
 * nodes and Backlogs when it has none, writes no TimestampType, adds PrimaryTag; Go writes nil
 * for empty lists; Java may write a hash as a signed int64; dd-trace-js sends a produce backlog
 * with no offset as nil), strict on the types of everything the agent reads.
 */

export interface IntakeLimits {
  /** Largest body accepted, as received (gzip). */
  maxBodyBytes: number
  /** Largest body once gunzipped: a small gzip bomb stops here. */
  maxDecompressedBytes: number
}

export const DEFAULT_LIMITS: IntakeLimits = { maxBodyBytes: 10 * 1024 * 1024, maxDecompressedBytes: 64 * 1024 * 1024 }

export interface IntakePoint {
  hash: bigint
  parent: bigint
  edgeTags: string[]
  pathway: Sketch
  edge: Sketch
  size: Sketch
}

export interface IntakeBacklog {
  tags: string[]
  value: number
}

export interface IntakeBucket {
  /** Milliseconds since the epoch. */
  startMs: number
  points: IntakePoint[]
  backlogs: IntakeBacklog[]
}

export interface IntakePayload {
  service: string
  env: string
  version: string
  lang: string
  tracerVersion: string
  buckets: IntakeBucket[]
}

/** A rejected payload; the message is the one-line reason sent with the 400. */
export class IntakeError extends Error {}

/** Reads a request body, rejecting with IntakeError as soon as it passes `max` bytes. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (declared > max) return reject(new IntakeError(`body too large: ${declared} bytes, over the limit of ${max}`))
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > max) {
        req.off('data', onData)
        // Keep reading (and dropping) so that the client can read the 400.
        req.resume()
        reject(new IntakeError(`body too large: over the limit of ${max} bytes`))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks, size)))
    const aborted = (): void => reject(new IntakeError('request aborted before the end of its body'))
    req.once('error', aborted)
    req.once('close', () => {
      if (!req.complete) aborted()
    })
  })
}

export async function decodePipelineStats(body: Uint8Array, limits: IntakeLimits): Promise<IntakePayload> {
  if (body.length === 0) throw new IntakeError('empty body')
  const raw = await gunzipLimited(body, limits.maxDecompressedBytes)
  let decoded: unknown
  try {
    decoded = decode(raw, { useBigInt64: true })
  } catch (err) {
    throw new IntakeError(`bad msgpack: ${oneLine((err as Error).message)}`)
  }
  try {
    return payloadOf(decoded)
  } catch (err) {
    if (err instanceof SketchError) throw new IntakeError(`wrong schema: ${err.message}`)
    throw err
  }
}

function gunzipLimited(body: Uint8Array, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: max }, (err, out) => {
      if (!err) return resolve(out)
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        reject(new IntakeError(`decompressed body too large: over the limit of ${max} bytes`))
      } else {
        reject(new IntakeError(`bad gzip: ${oneLine(err.message)}`))
      }
    })
  })
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

function sketchAt(o: Obj, key: string, path: string, required: boolean): Sketch {
  const v = o[key]
  if (v === undefined || v === null) {
    if (required) throw schemaError(`${path}${key}`, 'is missing')
    return emptySketch()
  }
  if (!(v instanceof Uint8Array)) throw schemaError(`${path}${key}`, 'is not binary')
  try {
    return decodeSketch(v)
  } catch (err) {
    if (err instanceof SketchError) throw schemaError(`${path}${key}`, `is not a valid DDSketch: ${err.message}`)
    throw err
  }
}

function payloadOf(v: unknown): IntakePayload {
  const o = mapAt(v, 'payload')
  const buckets = listAt(o, 'Stats', '', true).map((b, i) => bucketOf(b, `Stats[${i}].`))
  return {
    service: stringAt(o, 'Service', '', true),
    env: stringAt(o, 'Env', '', false),
    version: stringAt(o, 'Version', '', false),
    lang: stringAt(o, 'Lang', '', false),
    tracerVersion: stringAt(o, 'TracerVersion', '', false),
    buckets,
  }
}

function bucketOf(v: unknown, path: string): IntakeBucket {
  const o = mapAt(v, path.slice(0, -1))
  const start = o.Start
  let startNs: bigint
  if (typeof start === 'bigint' && start >= 0n) startNs = start
  else if (typeof start === 'number' && Number.isSafeInteger(start) && start >= 0) startNs = BigInt(start)
  else throw schemaError(`${path}Start`, start === undefined ? 'is missing' : 'is not a non-negative integer (ns)')
  return {
    startMs: Number(startNs / 1_000_000n),
    points: listAt(o, 'Stats', path, false).map((p, i) => pointOf(p, `${path}Stats[${i}].`)),
    backlogs: listAt(o, 'Backlogs', path, false).flatMap((b, i) => backlogOf(b, `${path}Backlogs[${i}].`)),
  }
}

function pointOf(v: unknown, path: string): IntakePoint {
  const o = mapAt(v, path.slice(0, -1))
  return {
    hash: hashAt(o, 'Hash', path, true),
    parent: hashAt(o, 'ParentHash', path, false),
    edgeTags: stringsAt(o, 'EdgeTags', path),
    pathway: sketchAt(o, 'PathwayLatency', path, true),
    edge: sketchAt(o, 'EdgeLatency', path, true),
    size: sketchAt(o, 'PayloadSize', path, false),
  }
}

/** A backlog, or none when its offset is nil or negative (Kafka's "no offset"). */
function backlogOf(v: unknown, path: string): IntakeBacklog[] {
  const o = mapAt(v, path.slice(0, -1))
  const tags = stringsAt(o, 'Tags', path)
  const raw = o.Value
  if (raw === undefined || raw === null) return []
  let value: number
  if (typeof raw === 'bigint') value = Number(raw)
  else if (typeof raw === 'number' && Number.isFinite(raw)) value = raw
  else throw schemaError(`${path}Value`, 'is not a number')
  return value >= 0 ? [{ tags, value }] : []
}
