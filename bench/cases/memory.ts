/**
 * Case 8, memory: heap used plus external memory (V8 counts Wasm memory and Buffers there) after
 * 1,000,000 checkpoints over 1,000 pathways (50 topics × 20 upstream pathways), and after a drain
 * (a flush). Each implementation runs in a fresh process of its own; the starting figure comes
 * after a warm-up (20,000 checkpoints on 10 pathways, drained), so that compiled code is not
 * counted as the load's. A second load and drain shows whether anything grows from one to the next.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { figure, type Figure, type Settings } from '../harness.js'
import type { Column, Row } from '../results.js'
import type { MemoryImpl, MemoryReport, MemorySample, MemoryStage } from './memory-child.js'

const CHILD = fileURLToPath(new URL('./memory-child.ts', import.meta.url))
const IMPLS: MemoryImpl[] = ['wasm', 'ts', 'dd-trace']
const MIB = 1024 * 1024

async function measure(impl: MemoryImpl, checkpoints: number): Promise<MemoryReport> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, impl, String(checkpoints)], {
    timeout: 300_000,
  })
  return JSON.parse(stdout) as MemoryReport
}

export async function memory(s: Settings): Promise<Row[]> {
  const checkpoints = s.quick ? 100_000 : 1_000_000
  // dd-trace keeps a stats point per hash Buffer, and its hash cache holds 500 pathways: past
  // that every checkpoint makes a new point (~7 KiB), so it runs a smaller load (see the notes).
  const ddCheckpoints = s.quick ? 10_000 : 30_000
  const count = (impl: MemoryImpl) => (impl === 'dd-trace' ? ddCheckpoints : checkpoints)
  const reports = {} as Record<MemoryImpl, MemoryReport>
  for (const impl of IMPLS) reports[impl] = await measure(impl, count(impl))

  const total = (m: MemorySample) => (m.heapUsed + m.external) / MIB
  const row = (name: string, at: MemoryStage): Row => ({
    case: 8,
    name,
    unit: 'MiB heap + external',
    figures: Object.fromEntries(IMPLS.map((i) => [i, figure([total(reports[i][at])])])) as Partial<Record<Column, Figure>>,
    ratios: {},
  })
  const thousands = (n: number) => n.toLocaleString('en-US')
  const loaded = row(`Memory after ${thousands(checkpoints)} checkpoints (dd-trace: ${thousands(ddCheckpoints)}), 1,000 pathways`, 'loaded')
  loaded.notes = IMPLS.map((i) => `${i}: ${thousands(reports[i].points)} stats points alive after ${thousands(count(i))} checkpoints`)
  const drained = row('Memory after a drain', 'drained')
  const change = (i: MemoryImpl, to: MemoryStage, from: MemoryStage) => figure([total(reports[i][to]) / total(reports[i][from])])
  drained.ratios = Object.fromEntries(IMPLS.map((i) => [`${i} drained/start`, change(i, 'drained', 'start')]))
  const again = row('Memory after a second load and drain', 'drainedAgain')
  again.ratios = Object.fromEntries(IMPLS.map((i) => [`${i} 2nd/1st drain`, change(i, 'drainedAgain', 'drained')]))
  const start = row('Memory at the start (after warm-up)', 'start')
  start.notes = IMPLS.map((i) => {
    const parts = (['start', 'loaded', 'drained', 'drainedAgain'] as const).map(
      (k) => `${k} ${(reports[i][k].heapUsed / MIB).toFixed(2)} + ${(reports[i][k].external / MIB).toFixed(2)}`,
    )
    return `${i} (heap + external, MiB): ${parts.join(', ')}`
  })
  return [start, loaded, drained, again]
}
