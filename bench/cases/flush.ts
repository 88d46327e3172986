/**
 * Case 5, flush: a bucket of 10,000 stats points (10,000 pathways, three checkpoints each, one
 * pathway after the other: dd-trace keeps one point per pathway only while its hash cache of 500
 * pathways still holds it) serialized to the final gzip payload. Filling is not timed; the flush is: pathwise's
 * `flush()` (drain from the core, msgpack, gzip) and dd-trace's `onInterval()` (its
 * serialization, its msgpack encoder, gzip); gzip at level 1 for both, as both send it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { PathwayContext } from '../../bindings/pathway/context.js'
import type { DataStreams } from '../../bindings/api/data-streams.js'
import type { Transport } from '../../bindings/export/exporter.js'
import { ddProcessor, type DdContext } from '../dd-trace.js'
import { compareSteps, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
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
  ]
}
