/**
 * The benchmark suite as a smoke check: `bench/run.ts --quick` (what `npm run bench:quick` runs
 * once the Wasm core is built) must run every case and give a finite, positive figure for each
 * implementation of each row; case 7 (the pipeline) must have run every configuration, each
 * Node, client and consume mode, and each configuration must have done what it claims (the
 * case itself refuses one that did not: dd-trace inactive, pathwise sending no header); case 10
 * (NATS and HTTP hops) each Node and hop, every configuration; case 11 (RabbitMQ) each client,
 * every configuration; case 12 (BullMQ jobs) each Node, every configuration, each job carrying
 * what its configuration claims. No time is asserted: the machine is shared, and speed is the
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
import { CLIENTS, CONFIGS, MODES } from '../bench/cases/pipeline.js'
import { HOP_CONFIGS } from '../bench/cases/hops.js'
import { RABBITMQ_CONFIGS } from '../bench/cases/rabbitmq.js'
import { ON_NODE_20, ON_NODE_24 } from '../bench/cases/bullmq.js'
import type { Figure } from '../bench/harness.js'
import type { Column, Results } from '../bench/results.js'

const RUN = fileURLToPath(new URL('../bench/run.ts', import.meta.url))

const positive = (f: Figure | undefined, what: string) => {
  assert.ok(f !== undefined, `${what}: no figure`)
  for (const v of [f.median, ...f.rounds]) assert.ok(Number.isFinite(v) && v > 0, `${what}: ${v}`)
}

// Case 7 installs Node 24 and builds the confluent client for it on a fresh clone (a minute or two, once).
test('bench:quick runs every case, each implementation and configuration giving a finite positive figure, and the agent load', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pathwise-bench-'))
  try {
    const out = join(dir, 'results.json')
    const args = ['--import', 'tsx', RUN, '--quick', `--out=${out}`]
    await promisify(execFile)(process.execPath, args, { timeout: 580_000, maxBuffer: 16 * 2 ** 20 })
    const results = JSON.parse(readFileSync(out, 'utf8')) as Results

    assert.deepEqual([...new Set(results.rows.map((r) => r.case))], [1, 2, 3, 4, 5, 6, 8])
    for (const row of results.rows) {
      const columns: Column[] = ['wasm', 'ts', 'dd-trace']
      for (const column of columns) positive(row.figures[column], `case ${row.case} "${row.name}", ${column}`)
      for (const [name, f] of Object.entries(row.ratios)) {
        for (const v of [f.median, ...f.rounds]) assert.ok(Number.isFinite(v), `case ${row.case} "${row.name}", ${name}: ${v}`)
      }
    }

    // Case 7: each Node, client and mode, every configuration in each cell.
    const cells = results.pipeline?.cells ?? []
    const majors = new Set(cells.map((c) => c.node.split('.')[0]))
    assert.deepEqual([...majors].sort(), ['v20', 'v24'])
    assert.deepEqual([...new Set(cells.map((c) => c.client))].sort(), [...CLIENTS].sort())
    assert.deepEqual([...new Set(cells.map((c) => c.mode))].sort(), [...MODES].sort())
    for (const cell of cells) {
      const where = `case 7, ${cell.node} ${cell.client} ${cell.mode}`
      for (const config of CONFIGS) {
        positive(cell.cpu[config], `${where}, ${config}, CPU per message`)
        positive(cell.throughput[config], `${where}, ${config}, throughput`)
      }
      for (const [name, f] of Object.entries(cell.derived)) assert.ok(Number.isFinite(f.median), `${where}, ${name}: ${f.median}`)
      assert.ok(cell.seen['dd-trace'].includes('span') && cell.seen['dd-trace-dsm'].includes('dd-pathway-ctx-base64'), `${where}: dd-trace was not active`)
    }
    const node24 = cells.filter((c) => c.node.startsWith('v24'))
    assert.deepEqual(
      results.targets.map((t) => t.goal),
      ['≥ 20×', '≥ 20×', '≥ 2×', ...node24.map(() => '≤ 0.25×'), ...node24.map((c) => (c.mode === 'eachMessage' ? '≤ 1 µs' : '≤ 0.3 µs')), '≤ 5 ms', '≤ 1 µs', '≤ +10%'],
    )
    // Case 10, NATS and HTTP hops: each Node and hop, every configuration, each having done what it claims.
    const hops = results.hops?.cells ?? []
    assert.deepEqual(hops.map((c) => `${c.node.split('.')[0]} ${c.transport}`).sort(), ['v20 http', 'v20 nats', 'v24 http', 'v24 nats'])
    for (const cell of hops) {
      for (const config of HOP_CONFIGS[cell.transport]) positive(cell.cpu[config], `case 10, ${cell.node} ${cell.transport}, ${config}`)
      assert.ok(cell.seen.pathwise?.includes('dd-pathway-ctx-base64'), `case 10, ${cell.node} ${cell.transport}: pathwise sent no header`)
    }
    // Case 11, RabbitMQ: each client (Node 24 in the quick run), every configuration, each having done what it claims.
    const rabbitmq = results.rabbitmq?.cells ?? []
    assert.deepEqual(rabbitmq.map((c) => `${c.node.split('.')[0]} ${c.client}`).sort(), ['v24 amqplib', 'v24 rhea'])
    for (const cell of rabbitmq) {
      for (const config of RABBITMQ_CONFIGS[cell.client]) positive(cell.cpu[config], `case 11, ${cell.node} ${cell.client}, ${config}`)
      assert.ok(cell.seen.pathwise?.includes('dd-pathway-ctx-base64'), `case 11, ${cell.node} ${cell.client}: pathwise sent no context`)
    }
    // Case 12, BullMQ jobs: each Node, every configuration (the case refuses one that did not carry what it claims).
    const jobs = results.bullmq?.cells ?? []
    assert.deepEqual(jobs.map((c) => c.node.split('.')[0]), ['v24', 'v20'])
    for (const [cell, configs] of [[jobs[0], ON_NODE_24], [jobs[1], ON_NODE_20]] as const) {
      for (const config of configs) positive(cell.cpu[config], `case 12, ${cell.node}, ${config}`)
      assert.deepEqual(cell.seen.pathwise, ['dd-pathway-ctx-base64'], `case 12, ${cell.node}: what pathwise's jobs carried`)
    }
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
