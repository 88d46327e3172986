/**
 * `npm run bench` (every case, the full sizes; writes bench/results.json) and `npm run bench:quick`
 * (small sizes, 2–3 minutes; writes bench/results.local.json, which git ignores).
 * Options: --quick, --only=1,2 (case numbers; 7 is the pipeline, bench/cases/pipeline.ts; 9 the
 * agent under load, bench/agent-load.ts; 10 NATS and HTTP hops, bench/cases/hops.ts; 11 RabbitMQ,
 * bench/cases/rabbitmq.ts; 12 BullMQ jobs, bench/cases/bullmq.ts), --out=FILE.
 * Prints case 7's tables, the table of the other cases and the targets; progress goes to stderr.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { agentLoadNotes, agentLoadTable } from './agent-load.js'
import { hopsTable } from './cases/hops.js'
import { rabbitMqTable } from './cases/rabbitmq.js'
import { bullmqTable } from './cases/bullmq.js'
import { pipelineCpuTable, pipelineDerivedTable, pipelineNotes, pipelineThroughputTable } from './cases/pipeline-report.js'
import { runSuite } from './suite.js'
import { machineLine, table, targetList } from './table.js'

const args = process.argv.slice(2)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = args.includes('--quick')
const only = option('only')
  ?.split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n))
const out = option('out') ?? fileURLToPath(new URL(quick ? './results.local.json' : './results.json', import.meta.url))

const results = await runSuite({ quick, only, log: (line) => process.stderr.write(`${line}\n`) })
writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
process.stdout.write(`${machineLine(results)}\n\n`)
if (results.pipeline !== undefined) {
  const p = results.pipeline
  process.stdout.write(`Case 7, the pipeline: CPU µs per message of the client process (median, IQR over rounds):\n\n${pipelineCpuTable(p)}\n\n`)
  process.stdout.write(`Derived within each round, µs per message:\n\n${pipelineDerivedTable(p)}\n\n`)
  process.stdout.write(`Throughput, thousand messages per second:\n\n${pipelineThroughputTable(p)}\n\n`)
  process.stdout.write(`${pipelineNotes(p).map((n) => `- ${n}`).join('\n')}\n\n`)
}
if (results.rows.length > 0) process.stdout.write(`${table(results)}\n\n`)
for (const row of results.rows) for (const note of row.notes ?? []) process.stdout.write(`- case ${row.case}, ${row.name}: ${note}\n`)
if (results.targets.length > 0) process.stdout.write(`\nTargets:\n${targetList(results)}\n`)
if (results.agentLoad !== undefined) {
  const notes = agentLoadNotes(results.agentLoad).map((l) => `- ${l}`)
  process.stdout.write(`\nCase 9, the agent under load:\n\n${agentLoadTable(results.agentLoad)}\n\n${notes.join('\n')}\n`)
}
if (results.hops !== undefined) process.stdout.write(`\nCase 10, NATS and HTTP hops: CPU µs per message (NATS) or request (HTTP) of the process (median, range over rounds):\n\n${hopsTable(results.hops)}\n`)
if (results.rabbitmq !== undefined) process.stdout.write(`\nCase 11, RabbitMQ: CPU µs per message of the process (median, range over rounds):\n\n${rabbitMqTable(results.rabbitmq)}\n`)
if (results.bullmq !== undefined) process.stdout.write(`\nCase 12, BullMQ jobs: CPU µs per job (add and process) of the process (median, range over rounds):\n\n${bullmqTable(results.bullmq)}\n`)
process.stdout.write(`\nwritten to ${out}\n`)
