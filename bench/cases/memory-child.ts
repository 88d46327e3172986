/**
 * One implementation of case 8 in a fresh process (started with --expose-gc), so that its heap
 * holds nothing of the others. argv: the implementation, the checkpoints of a load.
 * Prints one JSON line: heap used and external memory (where V8 counts Wasm memory and Buffers),
 * after a warm-up, after a load, after a drain, and after a second load and drain.
 */
import { setImmediate as tick } from 'node:timers/promises'

export type MemoryImpl = 'wasm' | 'ts' | 'dd-trace'
export interface MemorySample {
  heapUsed: number
  external: number
}
export type MemoryStage = 'start' | 'loaded' | 'drained' | 'drainedAgain'
export type MemoryReport = Record<MemoryStage, MemorySample> & {
  /** Stats points alive after the (first) load. */
  points: number
}

const TOPICS = 50
const PARENTS = 20 // 50 topics × 20 upstream pathways: 1,000 pathways
const PAYLOAD_BYTES = 100
const WARM_UP = 20_000

const collect = globalThis.gc as () => void

async function sample(): Promise<MemorySample> {
  collect()
  await tick()
  collect()
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external }
}

/** What a run needs from an implementation: a checkpoint on pathway (topic, parent), a drain, its live points. */
interface Subject {
  checkpoint(topic: number, parent: number): void
  drain(): Promise<void>
  points(): number
}

async function pathwiseSubject(core: 'wasm' | 'ts'): Promise<Subject> {
  const { PathwayContext } = await import('../../bindings/pathway/context.js')
  const { consumeTags, pathwise } = await import('../subjects.js')
  const dsm = pathwise(core)
  const nodes = Array.from({ length: TOPICS }, (_, t) => dsm.node(consumeTags('bench-group', `topic-${t}`))!)
  const now = Date.now()
  const parents = Array.from(
    { length: PARENTS },
    (_, p) => new PathwayContext((0x9e3779b1 ^ p) >>> 0, (0x85ebca6b + p) >>> 0, now - 5_000 - p, now - 50 - p),
  )
  return {
    checkpoint: (t, p) => void dsm.setCheckpoint(nodes[t], parents[p], PAYLOAD_BYTES),
    drain: () => dsm.flush(),
    points: () => dsm.stats.livePoints,
  }
}

async function ddSubject(): Promise<Subject> {
  const { ddProcessor } = await import('../dd-trace.js')
  const { ENV, SERVICE, consumeTags } = await import('../subjects.js')
  const { processor } = ddProcessor(SERVICE, ENV)
  const tags = Array.from({ length: TOPICS }, (_, t) => consumeTags('bench-group', `topic-${t}`))
  const now = Date.now()
  const parents = Array.from({ length: PARENTS }, (_, p) => {
    const hash = Buffer.alloc(8)
    hash.writeUInt32LE((0x85ebca6b + p) >>> 0, 0)
    hash.writeUInt32LE((0x9e3779b1 ^ p) >>> 0, 4)
    return { hash, pathwayStartNs: (now - 5_000 - p) * 1e6, edgeStartNs: (now - 50 - p) * 1e6 }
  })
  return {
    checkpoint: (t, p) => void processor.setCheckpoint(tags[t], null, parents[p], PAYLOAD_BYTES),
    drain: async () => processor.onInterval(),
    points: () => [...processor.buckets.values()].reduce((n, b) => n + b.checkpoints.size, 0),
  }
}

/** `count` checkpoints, round robin over the pathways (or over the first `pathways` of them). */
function load(subject: Subject, count: number, pathways = TOPICS * PARENTS): void {
  for (let k = 0; k < count; k++) {
    const w = k % pathways
    subject.checkpoint(w % TOPICS, Math.floor(w / TOPICS))
  }
}

async function main(): Promise<void> {
  const impl = process.argv[2] as MemoryImpl
  const checkpoints = Number(process.argv[3])
  const subject = impl === 'dd-trace' ? await ddSubject() : await pathwiseSubject(impl)
  // Compiled code and first-use allocations belong to the process, not to the load: a warm-up
  // on a few pathways, drained, comes before the starting figure.
  load(subject, WARM_UP, 10)
  await subject.drain()
  const start = await sample()
  load(subject, checkpoints)
  const loaded = await sample()
  const points = subject.points()
  await subject.drain()
  const drained = await sample()
  load(subject, checkpoints)
  await subject.drain()
  const drainedAgain = await sample()
  process.stdout.write(JSON.stringify({ start, loaded, drained, drainedAgain, points } satisfies MemoryReport) + '\n')
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err}\n`)
  process.exit(1)
})
