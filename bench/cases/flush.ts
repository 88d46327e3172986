/**
 * Case 5, flush: a bucket of 10,000 stats points (10,000 pathways, three checkpoints each, one
 * pathway after the other: dd-trace keeps one point per pathway only while its hash cache of 500
 * pathways still holds it) serialized to the final gzip payload. Filling is not timed; the flush is: pathwise's
 * `flush()` (drain from the core, msgpack, gzip) and dd-trace's `onInterval()` (its
 * serialization, its msgpack encoder, gzip); gzip at level 1 for both, as both send it.
 *
 * Then what a flush does to the event loop (issue 21), at 5,000 and 50,000 points over 50
 * topics, each implementation in fresh processes (`flush-child.ts`): the longest and the 99th
 * percentile event-loop delay while it flushes (compression on the thread pool included, as each
 * sends it: pathwise through its Node transport, dd-trace's writer with zlib.gzip), against as
 * long a time without a flush; the main thread's CPU per point (Linux's per-thread figures);
 * and the whole process's CPU per point (the thread pool's compression included).
 */
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { PathwayContext } from '../../bindings/pathway/context.js'
import type { DataStreams } from '../../bindings/api/data-streams.js'
import type { Transport } from '../../bindings/export/exporter.js'
import { ddProcessor, type DdContext } from '../dd-trace.js'
import { compareSteps, figure, type Figure, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import type { FlushImpl, FlushRound } from './flush-child.js'
import { ENV, PAYLOAD_BYTES, SERVICE, agentlessTransport, consumeTags, pathwise, words } from '../subjects.js'

const POINTS = 10_000
const PER_POINT = 3
const BUCKET_MS = 10_000

const mib = (bytes: number) => bytes / 2 ** 20

/** Fills start early enough in a 10 s bucket to end in it: one bucket, 10,000 points. */
async function atBucketStart(): Promise<void> {
  const into = Date.now() % BUCKET_MS
  if (into > BUCKET_MS / 2) await sleep(BUCKET_MS - into + 5)
}

export async function flush(s: Settings): Promise<Row[]> {
  const next = words(5)
  // Bytes below 0x80: dd-trace reads parent hashes as UTF-8 text in its hash cache's keys, so two
  // parents whose bytes are invalid UTF-8 alike would share a pathway there.
  const hashes = Array.from({ length: POINTS }, () => [next() & 0x7f7f7f7f, next() & 0x7f7f7f7f] as const)
  const tags = consumeTags('bench-group', 'orders')

  let pathwiseGzip = 0
  const transport: Transport = {
    ...agentlessTransport,
    post(_url, _headers, body) {
      pathwiseGzip = body.byteLength
      return Promise.resolve(200)
    },
  }

  const pathwiseSubject = (core: 'wasm' | 'ts') => {
    const dsm: DataStreams = pathwise(core, 0, transport)
    const node = dsm.node(tags)!
    return {
      async prepare() {
        await atBucketStart()
        const now = Date.now()
        for (let p = 0; p < POINTS; p++) {
          for (let c = 0; c < PER_POINT; c++) {
            const [hi, lo] = hashes[p]
            const parent = new PathwayContext(hi, lo, now - 1_000 * (c + 1) - p, now - 10 * (c + 1) - (p % 100))
            dsm.setCheckpoint(node, parent, PAYLOAD_BYTES + c)
          }
        }
        if (dsm.stats.livePoints !== POINTS) throw new Error(`pathwise (${core}) has ${dsm.stats.livePoints} points, not ${POINTS}`)
      },
      async step() {
        await dsm.flush()
        if (dsm.stats.livePoints !== 0) throw new Error(`pathwise (${core}) kept ${dsm.stats.livePoints} points after a flush`)
      },
    }
  }

  const { processor, flushed } = ddProcessor(SERVICE, ENV)
  const ddSubject = {
    async prepare() {
      await atBucketStart()
      const now = Date.now()
      for (let p = 0; p < POINTS; p++) {
        for (let c = 0; c < PER_POINT; c++) {
          const [hi, lo] = hashes[p]
          const hash = Buffer.alloc(8)
          hash.writeUInt32LE(lo, 0)
          hash.writeUInt32LE(hi, 4)
          const parent: DdContext = {
            hash,
            pathwayStartNs: (now - 1_000 * (c + 1) - p) * 1e6,
            edgeStartNs: (now - 10 * (c + 1) - (p % 100)) * 1e6,
          }
          processor.setCheckpoint(tags, null, parent, PAYLOAD_BYTES + c)
        }
      }
    },
    step() {
      processor.onInterval()
      if (flushed.points !== POINTS) throw new Error(`dd-trace flushed ${flushed.points} points, not ${POINTS}`)
    },
  }

  const figures = await compareSteps({ wasm: pathwiseSubject('wasm'), ts: pathwiseSubject('ts'), 'dd-trace': ddSubject }, s.quick ? 2 : 7)
  const loop = [...(await loopRows(s, 5_000)), ...(await loopRows(s, 50_000))]
  return [
    {
      case: 5,
      name: 'Flush: 10,000 stats points to gzip',
      unit: 'ms/flush',
      figures,
      ratios: timeRatios(figures),
      notes: [
        `dd-trace payload: ${mib(flushed.msgpackBytes).toFixed(1)} MiB msgpack, ${mib(flushed.gzipBytes).toFixed(2)} MiB gzipped` +
          (flushed.ownEncoderRefused
            ? "; dd-trace's own msgpack encoder refuses a payload over 50 MiB (its writer drops it), so @msgpack/msgpack encoded it here"
            : ''),
        `pathwise payload: ${mib(pathwiseGzip).toFixed(2)} MiB gzipped`,
      ],
    },
    ...loop,
  ]
}

const CHILD = fileURLToPath(new URL('./flush-child.ts', import.meta.url))
const IMPLS: FlushImpl[] = ['wasm', 'ts', 'dd-trace']

async function child(impl: FlushImpl, points: number, rounds: number): Promise<FlushRound[]> {
  const args = ['--expose-gc', '--import', 'tsx', CHILD, impl, String(points), String(rounds)]
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 600_000, maxBuffer: 2 ** 20 })
  return JSON.parse(stdout) as FlushRound[]
}

/**
 * The event-loop rows at one size: the rounds of each implementation run in processes of their
 * own, one implementation after the other in each set, the order rotating from set to set.
 */
async function loopRows(s: Settings, points: number): Promise<Row[]> {
  const sets = s.quick ? 1 : 3
  const perSet = s.quick ? 1 : 2
  const rounds = Object.fromEntries(IMPLS.map((i) => [i, [] as FlushRound[]])) as Record<FlushImpl, FlushRound[]>
  for (let set = 0; set < sets; set++) {
    for (let k = 0; k < IMPLS.length; k++) {
      const impl = IMPLS[(set + k) % IMPLS.length]
      rounds[impl].push(...(await child(impl, points, perSet)))
    }
  }
  const size = points.toLocaleString('en-US')
  const row = (name: string, unit: string, of: (r: FlushRound) => number, notes?: string[]): Row => {
    const figures = Object.fromEntries(IMPLS.map((i) => [i, figure(rounds[i].map(of))])) as Record<FlushImpl, Figure>
    return { case: 5, name, unit, figures, ratios: timeRatios(figures), ...(notes && { notes }) }
  }
  const median = (impl: FlushImpl, of: (r: FlushRound) => number) => figure(rounds[impl].map(of)).median
  const idle = IMPLS.map((i) => `${i} ${median(i, (r) => r.idle.maxMs).toFixed(1)} ms (p99 ${median(i, (r) => r.idle.p99Ms).toFixed(1)})`)
  const sent = IMPLS.map((i) => `${i} ${mib(median(i, (r) => r.gzipBytes)).toFixed(2)} MiB in ${median(i, (r) => r.wallMs).toFixed(0)} ms`)
  return [
    row(`Flush of ${size} points: longest event-loop delay`, 'ms', (r) => r.flush.maxMs, [
      `the same time without a flush, longest delay: ${idle.join(', ')}`,
      `gzip sent, and the flush's wall time: ${sent.join(', ')}`,
    ]),
    row(`Flush of ${size} points: 99th-percentile event-loop delay`, 'ms', (r) => r.flush.p99Ms),
    row(`Flush of ${size} points: main-thread CPU per point`, 'µs/point', (r) => ((r.flush.mainMs - r.idle.mainMs) * 1000) / points),
    row(`Flush of ${size} points: process CPU per point (compression included)`, 'µs/point', (r) => ((r.flush.cpuMs - r.idle.cpuMs) * 1000) / points),
  ]
}
