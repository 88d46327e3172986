/**
 * One implementation of case 5's event-loop figures in a fresh process (started with --expose-gc):
 * argv the implementation, the stats points, the rounds. Each round fills the points (not
 * measured), watches an idle loop (the same run without the flush, as long as the last flush
 * took), then flushes them while `monitorEventLoopDelay` samples the loop every millisecond. A
 * warm-up round comes first and is not reported. Prints one JSON line, a FlushRound per round.
 */
import { existsSync, readFileSync } from 'node:fs'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import zlib from 'node:zlib'

export type FlushImpl = 'wasm' | 'ts' | 'dd-trace'

export interface LoopFigures {
  /** Longest and 99th-percentile event-loop delay in the window, ms. */
  maxMs: number
  p99Ms: number
  /** CPU of the main thread in the window, ms (see mainThreadMs). */
  mainMs: number
  /** CPU of the whole process in the window (the main thread and the thread pool), ms. */
  cpuMs: number
}

export interface FlushRound {
  flush: LoopFigures
  /** The same length of time with no flush. */
  idle: LoopFigures
  /** Bytes sent (gzip), and the flush's wall time, ms. */
  gzipBytes: number
  wallMs: number
}

const TOPICS = 50
const PER_POINT = 3
const PAYLOAD_BYTES = 100
/** Watched after the flush ends too: a stall just after it (a collection of its garbage) is the flush's. */
const TAIL_MS = 50

const collect = globalThis.gc as () => void

/**
 * The main thread's CPU time so far, ms: Linux's per-thread scheduler statistics (the main
 * thread's id is the process's), in ns. Where there are none, the event loop's busy time, which
 * on a loaded machine also counts the time the thread waited for a CPU.
 */
const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`
const mainThreadMs: () => number = existsSync(SCHEDSTAT)
  ? () => Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[0]) / 1e6
  : () => performance.eventLoopUtilization().active

/** What a round needs from an implementation: a checkpoint, and a flush of everything. */
interface Subject {
  checkpoint(topic: number, hi: number, lo: number, pathwayStart: number, edgeStart: number, payloadSize: number): void
  /** Resolves once the payload is compressed and handed over; the bytes it took. */
  flush(): Promise<number>
}

/**
 * `points` stats points: point p on topic p mod 50, its own upstream pathway, three checkpoints
 * whose latencies spread as a busy consumer's do. Begun early enough in a 10 s bucket to end in it.
 */
async function fill(subject: Subject, points: number): Promise<void> {
  const into = Date.now() % 10_000
  if (into > 5_000) await sleep(10_000 - into + 5)
  const now = Date.now()
  for (let p = 0; p < points; p++) {
    const hi = (Math.imul(p + 1, 0x9e3779b1) & 0x7f7f7f7f) >>> 0
    const lo = (Math.imul(p + 7, 0x85ebca6b) & 0x7f7f7f7f) >>> 0
    for (let c = 0; c < PER_POINT; c++) subject.checkpoint(p % TOPICS, hi, lo, now - 1_000 * (c + 1) - (p % 5_000), now - 10 * (c + 1) - (p % 100), PAYLOAD_BYTES + c)
  }
}

async function pathwiseSubject(core: 'wasm' | 'ts'): Promise<Subject> {
  const { PathwayContext } = await import('../../bindings/pathway/context.js')
  const { nodeTransport } = await import('../../bindings/export/node-transport.js')
  const { consumeTags, pathwise } = await import('../subjects.js')
  let sent = 0
  // the Node transport (gzip on the thread pool), answered at once without a network, by a Datadog
  // Agent (its /info says nothing of the sparse form: the sketches go contiguous, as dd-trace's)
  const transport = {
    ...nodeTransport,
    post(_url: string, _headers: Record<string, string>, body: Uint8Array) {
      sent += body.byteLength
      return Promise.resolve(200)
    },
    getJson: () => Promise.resolve({}),
  }
  const dsm = pathwise(core, 0, transport)
  const nodes = Array.from({ length: TOPICS }, (_, t) => dsm.node(consumeTags('bench-group', `topic-${t}`))!)
  return {
    checkpoint(topic, hi, lo, pathwayStart, edgeStart, payloadSize) {
      dsm.setCheckpoint(nodes[topic], new PathwayContext(hi, lo, pathwayStart, edgeStart), payloadSize)
    },
    async flush() {
      sent = 0
      await dsm.flush()
      if (dsm.stats.livePoints !== 0) throw new Error(`pathwise (${core}) kept ${dsm.stats.livePoints} points after a flush`)
      return sent
    },
  }
}

/** dd-trace's processor with its writer's own steps: its msgpack encoder, then zlib.gzip on the thread pool (no request). */
async function ddSubject(): Promise<Subject> {
  const { ddProcessor } = await import('../dd-trace.js')
  const { ENV, SERVICE, consumeTags } = await import('../subjects.js')
  const { processor, encode } = ddProcessor(SERVICE, ENV)
  const tags = Array.from({ length: TOPICS }, (_, t) => consumeTags('bench-group', `topic-${t}`))
  let done: (bytes: number) => void = () => {}
  processor.writer = {
    flush(payload: unknown) {
      zlib.gzip(encode(payload), { level: 1 }, (err, gz) => {
        if (err) throw err
        done(gz.byteLength)
      })
    },
  }
  return {
    checkpoint(topic, hi, lo, pathwayStart, edgeStart, payloadSize) {
      const hash = Buffer.alloc(8)
      hash.writeUInt32LE(lo, 0)
      hash.writeUInt32LE(hi, 4)
      processor.setCheckpoint(tags[topic], null, { hash, pathwayStartNs: pathwayStart * 1e6, edgeStartNs: edgeStart * 1e6 }, payloadSize)
    },
    flush() {
      return new Promise<number>((resolve) => {
        done = resolve
        processor.onInterval()
      })
    },
  }
}

/** Runs `work` while watching the loop; `minMs` keeps watching until at least that long has passed. */
async function watch(work: () => Promise<unknown>, minMs = 0): Promise<LoopFigures & { wallMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  // the monitor's first tick only starts its clock: a block before it would go unseen
  await sleep(5)
  const main = mainThreadMs()
  const cpu = process.cpuUsage()
  const start = performance.now()
  await work()
  await sleep(Math.max(TAIL_MS, minMs - (performance.now() - start)))
  delay.disable()
  const wallMs = performance.now() - start
  const used = process.cpuUsage(cpu)
  return {
    maxMs: delay.max / 1e6,
    p99Ms: delay.percentile(99) / 1e6,
    mainMs: mainThreadMs() - main,
    cpuMs: (used.user + used.system) / 1000,
    wallMs,
  }
}

/** How long the last flush's window lasted: the idle window before the next flush lasts as long. */
let lastWindowMs = 100

/** Fills, then watches an idle loop, then the flush: the points are alive in both, the fill's garbage collected before. */
async function round(subject: Subject, points: number): Promise<FlushRound> {
  await fill(subject, points)
  collect()
  await sleep(20)
  const { wallMs: _, ...idle } = await watch(() => Promise.resolve(), lastWindowMs)
  let gzipBytes = 0
  let flushMs = 0
  const { wallMs, ...flush } = await watch(async () => {
    const start = performance.now()
    gzipBytes = await subject.flush()
    flushMs = performance.now() - start
  })
  lastWindowMs = wallMs
  return { flush, idle, gzipBytes, wallMs: flushMs }
}

async function main(): Promise<void> {
  const impl = process.argv[2] as FlushImpl
  const points = Number(process.argv[3])
  const rounds = Number(process.argv[4])
  const subject = impl === 'dd-trace' ? await ddSubject() : await pathwiseSubject(impl)
  await round(subject, points)
  const out: FlushRound[] = []
  for (let r = 0; r < rounds; r++) out.push(await round(subject, points))
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err}\n`)
  process.exit(1)
})
