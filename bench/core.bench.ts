/**
 * ns per operation of the Wasm and TS cores, side by side: sketch insert, pathway hash,
 * checkpoint (single and batched). Plain warm loops timed with process.hrtime.bigint(); each
 * figure is the best of several rounds, after a warm-up round. Then the cost of a small drain
 * on a fresh core and on one that has seen 100,000 nodes come and go (issue 11).
 */
import {
  BATCH_CAPACITY,
  BATCH_EDGE_LATENCY,
  BATCH_NODE,
  BATCH_OUT_HI,
  BATCH_OUT_LO,
  BATCH_PARENT_HI,
  BATCH_PARENT_LO,
  BATCH_PATHWAY_LATENCY,
  BATCH_PAYLOAD,
  BATCH_STRIDE,
} from '../bindings/core/layout.js'
import type { Core } from '../bindings/core/types.js'
import { TsCore } from '../bindings/ts/core.js'
import { createWasmCore } from '../bindings/wasm/core.js'

/** Drains the buckets below `beforeBucket`: written out chunk by chunk, as a flush does, and let go. */
function drain(core: Core, beforeBucket: number): void {
  core.drainBegin(beforeBucket, false)
  while (core.drainChunk(64 * 1024) > 0);
  core.drainEnd()
}

// a multiple of BATCH_CAPACITY, so that batches cover exactly as many records
const ITERATIONS = 1 << Number(process.env.BENCH_LOG2_ITERATIONS ?? 21)
const ROUNDS = 10
const POOL = 4096 // inputs cycle through this many precomputed values (a power of two)
const BUCKET = 176_000_000

/** Precomputed inputs, so the loops time the core and not a random generator. */
let seed = 42
const random = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
  return seed / 4294967296
}
const latencies = Float64Array.from({ length: POOL }, () => Math.exp(-3 + 2 * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())))
const payloads = Float64Array.from({ length: POOL }, () => Math.floor(random() * 65536))
// 512 distinct parents: a steady state where points are found, not created
const parentHi = Uint32Array.from({ length: POOL }, (_, i) => Math.imul(i & 511, 0x9e3779b1) >>> 0)
const parentLo = Uint32Array.from({ length: POOL }, (_, i) => Math.imul(i & 511, 0x85ebca6b) >>> 0)

/** Best ns per op over ROUNDS rounds of `body(n)`, which does n ops. */
function time(body: (n: number) => number): number {
  let sink = body(ITERATIONS / 8) // warm-up
  let best = Infinity
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    sink += body(ITERATIONS)
    const ns = Number(process.hrtime.bigint() - start) / ITERATIONS
    if (ns < best) best = ns
  }
  if (sink === 0.5) console.log('') // keeps the results alive
  return best
}

function nodesOf(core: Core): number[] {
  return Array.from({ length: 8 }, (_, i) => core.node('checkout', 'prod', ['direction:out', `topic:orders-${i}`, 'type:kafka']))
}

function sketchInsert(core: Core): number {
  const sketch = core.newSketch()
  const ns = time((n) => {
    for (let i = 0; i < n; i++) sketch.add(latencies[i & (POOL - 1)])
    return sketch.count
  })
  sketch.free()
  return ns
}

function pathwayHash(core: Core): number {
  const nodes = nodesOf(core)
  return time((n) => {
    let acc = 0
    for (let i = 0; i < n; i++) {
      const j = i & (POOL - 1)
      core.pathwayHash(nodes[i & 7], parentHi[j], parentLo[j])
      acc ^= core.hashHi ^ core.hashLo
    }
    return acc
  })
}

function checkpoint(core: Core): number {
  const nodes = nodesOf(core)
  const ns = time((n) => {
    let acc = 0
    for (let i = 0; i < n; i++) {
      const j = i & (POOL - 1)
      if (core.checkpoint(nodes[i & 7], parentHi[j], parentLo[j], BUCKET, latencies[j], latencies[(j + 1) & (POOL - 1)], payloads[j])) acc ^= core.hashHi ^ core.hashLo
    }
    return acc
  })
  drain(core, Infinity)
  return ns
}

function fillBatch(b: Float64Array, nodes: readonly number[], k: number): void {
  for (let i = 0, r = 0; i < BATCH_CAPACITY; i++, r += BATCH_STRIDE, k++) {
    const j = k & (POOL - 1)
    b[r + BATCH_NODE] = nodes[k & 7]
    b[r + BATCH_PARENT_HI] = parentHi[j]
    b[r + BATCH_PARENT_LO] = parentLo[j]
    b[r + BATCH_PATHWAY_LATENCY] = latencies[j]
    b[r + BATCH_EDGE_LATENCY] = latencies[(j + 1) & (POOL - 1)]
    b[r + BATCH_PAYLOAD] = payloads[j]
  }
}

function readBatch(b: Float64Array): number {
  let acc = 0
  for (let r = 0; r < BATCH_CAPACITY * BATCH_STRIDE; r += BATCH_STRIDE) acc ^= b[r + BATCH_OUT_HI] ^ b[r + BATCH_OUT_LO]
  return acc
}

/** Per record: filling the batch buffer, the call, and reading each record's hash back. */
function checkpointBatched(core: Core): number {
  const nodes = nodesOf(core)
  const ns = time((n) => {
    let acc = 0
    for (let k = 0; k < n; k += BATCH_CAPACITY) {
      fillBatch(core.batchBuffer(), nodes, k)
      acc += core.checkpointBatch(BATCH_CAPACITY, BUCKET)
      acc ^= readBatch(core.batchBuffer()) // after the call: a memory growth replaces the view
    }
    return acc
  })
  drain(core, Infinity)
  return ns
}

const benches: [string, (core: Core) => number][] = [
  ['sketch insert', sketchInsert],
  ['pathway hash', pathwayHash],
  ['checkpoint', checkpoint],
  ['checkpoint (batched, per record)', checkpointBatched],
]

console.log(`node ${process.version}, ${ITERATIONS} ops a round, best of ${ROUNDS} rounds`)
console.log(`${'ns/op'.padEnd(34)}${'wasm'.padStart(10)}${'ts'.padStart(10)}${'ts/wasm'.padStart(10)}`)
for (const [name, bench] of benches) {
  const wasm = bench(createWasmCore({}))
  const ts = bench(new TsCore())
  console.log(`${name.padEnd(34)}${wasm.toFixed(1).padStart(10)}${ts.toFixed(1).padStart(10)}${(ts / wasm).toFixed(2).padStart(9)}x`)
}

/** The node of the i-th topic, as a consumer would register it. */
const topicNode = (core: Core, i: number) => core.node('checkout', 'prod', ['direction:in', 'group:billing', `topic:orders-${i}`, 'type:kafka'])

/**
 * 100,000 distinct nodes, each with a checkpoint, through a cache keeping the last 10,000 live
 * (releasing the oldest), a drain every 1,000 nodes; then a drain of everything.
 */
function churn(core: Core): void {
  const ids: number[] = []
  for (let i = 0; i < 100_000; i++) {
    const bucket = BUCKET + Math.floor(i / 1000)
    if (i % 1000 === 0) drain(core, bucket)
    if (i >= 10_000) core.releaseNode(ids[i - 10_000])
    ids.push(topicNode(core, i))
    core.checkpoint(ids[i], parentHi[i & (POOL - 1)], parentLo[i & (POOL - 1)], bucket, latencies[i & (POOL - 1)], latencies[(i + 1) & (POOL - 1)], payloads[i & (POOL - 1)])
  }
  drain(core, Infinity)
}

/** ms of one drain of 10 points (their checkpoints are not timed). */
function smallDrain(core: Core, node: number, bucket: number): number {
  for (let j = 0; j < 10; j++) core.checkpoint(node, parentHi[j], parentLo[j], bucket, latencies[j], latencies[j + 1], payloads[j])
  const start = process.hrtime.bigint()
  drain(core, Infinity)
  return Number(process.hrtime.bigint() - start) / 1e6
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]
const wasmBytes = (core: Core) => (core as unknown as { x: { memory: WebAssembly.Memory } }).x.memory.buffer.byteLength

console.log('\n10-point drain, ms (median of 51, fresh and churned alternating): churned = after 100,000 nodes through a cache of 10,000')
console.log(`${''.padEnd(8)}${'fresh'.padStart(10)}${'churned'.padStart(10)}${'ratio'.padStart(10)}   Wasm memory, bytes (fresh: 1 node, churned: 10,000)`)
for (const [name, make] of [['wasm', () => createWasmCore({})], ['ts', () => new TsCore()]] as const) {
  const fresh = make()
  const churned = make()
  churn(churned)
  const nodes = [topicNode(fresh, 0), topicNode(churned, 99_999)]
  const times: [number[], number[]] = [[], []]
  const ratios: number[] = []
  for (let round = 0; round < 51; round++) {
    const bucket = BUCKET + 1000 + round
    const a = smallDrain(fresh, nodes[0], bucket)
    const b = smallDrain(churned, nodes[1], bucket)
    times[0].push(a)
    times[1].push(b)
    ratios.push(b / a)
  }
  const memory = name === 'wasm' ? `${wasmBytes(fresh)} fresh, ${wasmBytes(churned)} churned` : ''
  console.log(`${name.padEnd(8)}${median(times[0]).toFixed(4).padStart(10)}${median(times[1]).toFixed(4).padStart(10)}${median(ratios).toFixed(2).padStart(9)}x   ${memory}`)
}
