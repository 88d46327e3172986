/**
 * Case 6, the core alone: one DDSketch insert, and one pathway hash (node hash and parent hash
 * to the pathway hash). pathwise: the Wasm and TS cores through the Core interface. dd-trace: an
 * insert into its sketch (the one its stats points hold), and `computePathwayHash` as each of
 * its checkpoints calls it, its LRU cache warm (256 parents, under its 500 entries): dd-trace
 * hashes with SHA-256 and pays that only on a cache miss.
 * This case takes the place of bench/core.bench.ts for the suite; that file stays a
 * developer's tool with its own checkpoint figures.
 */
import { createCore } from '../../bindings/processor/create-core.js'
import { ddPathwayHash, newDdSketch } from '../dd-trace.js'
import { compare, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import { ENV, SERVICE, produceTags, words } from '../subjects.js'

const POOL = 4096
const PARENTS = 256
const OPS = 1000

export function core(s: Settings): Row[] {
  const next = words(6)
  // latencies in seconds, log-normal around 50 ms: what the latency sketches see
  const values = Float64Array.from({ length: POOL }, () => {
    const u = (next() + 1) / 4294967297
    const v = next() / 4294967296
    return Math.exp(-3 + Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v))
  })
  const parentHi = Uint32Array.from({ length: PARENTS }, () => next())
  const parentLo = Uint32Array.from({ length: PARENTS }, () => next())
  const parentBuffers = Array.from({ length: PARENTS }, (_, j) => {
    const b = Buffer.alloc(8)
    b.writeUInt32LE(parentLo[j], 0)
    b.writeUInt32LE(parentHi[j], 4)
    return b
  })
  const tags = produceTags('orders')

  const sketchBody = (backend: 'wasm' | 'ts') => {
    const sketch = createCore({ backend }).newSketch()
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) sketch.add(values[i & (POOL - 1)])
    }
  }
  const ddSketch = newDdSketch()
  let d = 0
  const sketches = compare(
    {
      wasm: sketchBody('wasm'),
      ts: sketchBody('ts'),
      'dd-trace': () => {
        for (let k = 0; k < OPS; k++, d++) ddSketch.accept(values[d & (POOL - 1)])
      },
    },
    OPS,
    s,
  )

  const hashBody = (backend: 'wasm' | 'ts') => {
    const c = createCore({ backend })
    const node = c.node(SERVICE, ENV, tags)
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) c.pathwayHash(node, parentHi[i & (PARENTS - 1)], parentLo[i & (PARENTS - 1)])
    }
  }
  let h = 0
  const hashes = compare(
    {
      wasm: hashBody('wasm'),
      ts: hashBody('ts'),
      'dd-trace': () => {
        for (let k = 0; k < OPS; k++, h++) ddPathwayHash(SERVICE, ENV, tags, parentBuffers[h & (PARENTS - 1)])
      },
    },
    OPS,
    s,
  )

  return [
    { case: 6, name: 'Sketch insert', unit: 'ns/insert', figures: sketches, ratios: timeRatios(sketches) },
    { case: 6, name: 'Pathway hash (dd-trace: LRU cache hit)', unit: 'ns/hash', figures: hashes, ratios: timeRatios(hashes) },
  ]
}
