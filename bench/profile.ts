/**
 * Where case 7's time goes: compares two CPU profiles of case 7's client processes (made with
 * BENCH_PIPELINE_CPU_PROF=DIR, which profiles the pathwise Wasm and header-alone processes over
 * their rounds) function by function, self time per message, the largest differences first.
 *
 *   node --import tsx bench/profile.ts WASM.cpuprofile HEADER.cpuprofile CPU_A CPU_B [TOP]
 *
 * CPU_A, CPU_B: the CPU µs per message case 7 measured for each. A function's self time is its
 * share of the profile's busy samples (idle left out) times that figure: samples are counted, not
 * timed, because on a loaded machine the sampler thread itself waits, and a time between two
 * samples would be charged to whatever ran last.
 * Each function is put down to its owner (pathwise, kafkajs, the confluent client, dd-trace,
 * Node, V8), read from its script's path.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

const PATHWISE = [fileURLToPath(new URL('../dist/', import.meta.url)), fileURLToPath(new URL('../bindings/', import.meta.url))]

function owner(url: string): string {
  if (url === '') return 'V8'
  if (url.includes('/dd-trace/')) return 'dd-trace'
  if (url.includes('/kafkajs/')) return 'kafkajs'
  if (url.includes('/@confluentinc/')) return 'confluent'
  if (PATHWISE.some((p) => url.replace(/^file:\/\//, '').startsWith(p)) || url.startsWith('wasm://')) return 'pathwise'
  if (url.startsWith('node:')) return 'Node'
  return 'other'
}

/** Self time in µs per function (name, script, line). */
function samplesOf(profile: CpuProfile): Map<string, { owner: string; samples: number }> {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const out = new Map<string, { owner: string; samples: number }>()
  profile.samples.forEach((id) => {
    const f = frames.get(id)!
    if (f.functionName === '(idle)') return
    const script = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '')
    const key = `${f.functionName || '(anonymous)'} ${script}${script ? `:${f.lineNumber + 1}` : ''}`
    const entry = out.get(key) ?? { owner: owner(f.url), samples: 0 }
    entry.samples++
    out.set(key, entry)
  })
  return out
}

/** µs per message per function: its share of the busy samples times the measured CPU per message. */
function perMessage(file: string, cpu: number): Map<string, { owner: string; micros: number }> {
  const samples = samplesOf(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)
  const busy = [...samples.values()].reduce((t, e) => t + e.samples, 0)
  return new Map([...samples].map(([k, e]) => [k, { owner: e.owner, micros: (e.samples / busy) * cpu }]))
}

function main(): void {
  const [a, b, cpuA, cpuB, top = '25'] = process.argv.slice(2)
  if (a === undefined || b === undefined || !(Number(cpuA) > 0) || !(Number(cpuB) > 0)) {
    throw new Error('usage: bench/profile.ts A.cpuprofile B.cpuprofile CPU_A CPU_B [TOP]')
  }
  const [pa, pb] = [perMessage(a, Number(cpuA)), perMessage(b, Number(cpuB))]
  const rows = [...new Set([...pa.keys(), ...pb.keys()])].map((key) => {
    const x = pa.get(key)?.micros ?? 0
    const y = pb.get(key)?.micros ?? 0
    return { key, owner: (pa.get(key) ?? pb.get(key))!.owner, a: x, b: y, diff: x - y }
  })
  rows.sort((r, s) => s.diff - r.diff)
  const byOwner = new Map<string, number>()
  for (const r of rows) byOwner.set(r.owner, (byOwner.get(r.owner) ?? 0) + r.diff)
  const f = (v: number) => v.toFixed(3)
  process.stdout.write(`µs per message: A ${cpuA}, B ${cpuB}; A − B by owner: ${[...byOwner].sort((x, y) => y[1] - x[1]).map(([o, v]) => `${o} ${f(v)}`).join(', ')}\n\n`)
  process.stdout.write('| function | owner | A µs/msg | B µs/msg | A − B |\n|---|---|---:|---:|---:|\n')
  for (const r of rows.slice(0, Number(top))) process.stdout.write(`| \`${r.key}\` | ${r.owner} | ${f(r.a)} | ${f(r.b)} | ${f(r.diff)} |\n`)
}

main()
