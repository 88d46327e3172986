/**
 * The benchmark suite as a smoke check: `bench/run.ts --quick` (what `npm run bench:quick` runs
 * once the Wasm core is built) must run every case and give a finite, positive figure for each
 * implementation of each row. No time is asserted: the machine is shared, and speed is the
 * suite's business, not this test's.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Column, Results } from '../bench/results.js'

const RUN = fileURLToPath(new URL('../bench/run.ts', import.meta.url))

test('bench:quick runs all eight cases, each implementation giving a finite positive figure, and the agent load', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pathwise-bench-'))
  try {
    const out = join(dir, 'results.json')
    const args = ['--import', 'tsx', RUN, '--quick', `--out=${out}`]
    await promisify(execFile)(process.execPath, args, { timeout: 220_000, maxBuffer: 16 * 2 ** 20 })
    const results = JSON.parse(readFileSync(out, 'utf8')) as Results

    assert.deepEqual([...new Set(results.rows.map((r) => r.case))], [1, 2, 3, 4, 5, 6, 7, 8])
    for (const row of results.rows) {
      const columns: Column[] = row.case === 7 ? ['off', 'wasm', 'ts'] : ['wasm', 'ts', 'dd-trace']
      for (const column of columns) {
        const f = row.figures[column]
        assert.ok(f !== undefined, `case ${row.case} "${row.name}": no figure for ${column}`)
        for (const v of [f.median, ...f.rounds]) assert.ok(Number.isFinite(v) && v > 0, `case ${row.case} "${row.name}", ${column}: ${v}`)
      }
      for (const [name, f] of Object.entries(row.ratios)) {
        for (const v of [f.median, ...f.rounds]) assert.ok(Number.isFinite(v), `case ${row.case} "${row.name}", ${name}: ${v}`)
      }
    }
    assert.deepEqual(
      results.targets.map((t) => t.goal),
      ['≥ 20×', '≥ 20×', '≥ 2×', '≤ 1%', '≤ +10%'],
    )
    // Case 9, the agent under load: its quick runs took payloads and measured the agent process.
    const load = results.agentLoad
    assert.ok(load !== undefined && load.runs.length > 0, 'case 9 (agent under load) did not run')
    for (const r of load.runs) {
      const figures = { accepted: r.acceptedPayloadsPerSecond, p99: r.intakeMs.p99, summary: r.summaryMs.p50, rss: r.rssMiB.peak, cpu: r.agentCpuPercent }
      for (const [name, v] of Object.entries(figures)) assert.ok(Number.isFinite(v) && v > 0, `case 9 "${r.spec.name}", ${name}: ${v}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
