/**
 * Where case 7's time goes: compares two `--cpu-prof` profiles of case 7's client processes (made
 * with BENCH_PIPELINE_CPU_PROF=DIR, which profiles the pathwise Wasm and header-alone processes)
 * function by function, self time per message, the largest differences first.
 *
 *   node --import tsx bench/profile.ts WASM.cpuprofile HEADER.cpuprofile MESSAGES [TOP]
 *
 * MESSAGES: the messages each process handled while profiled (warm-up plus rounds × messages).
 * Each function is put down to its owner (pathwise, kafkajs, the confluent client, dd-trace,
 * Node, V8), read from its script's path.
 */
import { readFileSync } from 'node:fs'

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

function owner(url: string): string {
  if (url === '') return 'V8'
  if (url.includes('/dd-trace/')) return 'dd-trace'
  if (url.includes('/kafkajs/')) return 'kafkajs'
  if (url.includes('/@confluentinc/')) return 'confluent'
  if (url.includes('/dist/') || url.includes('/bindings/') || url.includes('wasm://')) return 'pathwise'
  if (url.startsWith('node:')) return 'Node'
  return 'other'
}

/** Self time in µs per function (name, script, line). */
function selfTimes(profile: CpuProfile): Map<string, { owner: string; micros: number }> {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const out = new Map<string, { owner: string; micros: number }>()
  profile.samples.forEach((id, i) => {
    const f = frames.get(id)!
    const script = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '')
    const key = `${f.functionName || '(anonymous)'} ${script}${script ? `:${f.lineNumber + 1}` : ''}`
    const entry = out.get(key) ?? { owner: owner(f.url), micros: 0 }
    entry.micros += profile.timeDeltas[i] ?? 0
    out.set(key, entry)
  })
  return out
}

function main(): void {
  const [a, b, messages, top = '25'] = process.argv.slice(2)
  const n = Number(messages)
  if (a === undefined || b === undefined || !(n > 0)) throw new Error('usage: bench/profile.ts A.cpuprofile B.cpuprofile MESSAGES [TOP]')
  const read = (file: string) => selfTimes(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)
  const [pa, pb] = [read(a), read(b)]
  const rows = [...new Set([...pa.keys(), ...pb.keys()])].map((key) => {
    const x = pa.get(key)?.micros ?? 0
    const y = pb.get(key)?.micros ?? 0
    return { key, owner: (pa.get(key) ?? pb.get(key))!.owner, a: x / n, b: y / n, diff: (x - y) / n }
  })
  rows.sort((r, s) => s.diff - r.diff)
  const total = (p: Map<string, { micros: number }>) => [...p.values()].reduce((t, e) => t + e.micros, 0) / n
  const byOwner = new Map<string, number>()
  for (const r of rows) byOwner.set(r.owner, (byOwner.get(r.owner) ?? 0) + r.diff)
  const f = (v: number) => v.toFixed(3)
  process.stdout.write(`self time, µs per message: A ${f(total(pa))}, B ${f(total(pb))}, A − B ${f(total(pa) - total(pb))}\n`)
  process.stdout.write(`A − B by owner: ${[...byOwner].sort((x, y) => y[1] - x[1]).map(([o, v]) => `${o} ${f(v)}`).join(', ')}\n\n`)
  process.stdout.write('| function | owner | A µs/msg | B µs/msg | A − B |\n|---|---|---:|---:|---:|\n')
  for (const r of rows.slice(0, Number(top))) process.stdout.write(`| \`${r.key}\` | ${r.owner} | ${f(r.a)} | ${f(r.b)} | ${f(r.diff)} |\n`)
}

main()
