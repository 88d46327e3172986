/** The cases of the suite, run in order (7, the pipeline, has its own tables), the targets read from their figures, then the agent under load (9). */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import os from 'node:os'
import { runAgentLoad } from './agent-load.js'
import { batchConsume } from './cases/batch-consume.js'
import { runBullmq } from './cases/bullmq.js'
import { cardinality } from './cases/cardinality.js'
import { consume } from './cases/consume.js'
import { core } from './cases/core.js'
import { flush } from './cases/flush.js'
import { runHops } from './cases/hops.js'
import { memory } from './cases/memory.js'
import { runPipeline, type PipelineResults } from './cases/pipeline.js'
import { pipelineTargets } from './cases/pipeline-report.js'
import { produce } from './cases/produce.js'
import { runRabbitMq } from './cases/rabbitmq.js'
import { DD_TRACE_VERSION } from './dd-trace.js'
import { FULL, QUICK, type Settings } from './harness.js'
import type { Results, Row, Target } from './results.js'

export const CASES: { n: number; name: string; run: (s: Settings) => Row[] | Promise<Row[]> }[] = [
  { n: 1, name: 'produce', run: produce },
  { n: 2, name: 'consume', run: consume },
  { n: 3, name: 'batch consume', run: batchConsume },
  { n: 4, name: 'high cardinality', run: cardinality },
  { n: 5, name: 'flush', run: flush },
  { n: 6, name: 'core', run: core },
  { n: 8, name: 'memory', run: memory },
]

/** Not rows of the table (other columns, other units): their own runs and tables. */
export const PIPELINE_CASE = 7
export const AGENT_LOAD_CASE = 9
export const HOPS_CASE = 10
export const RABBITMQ_CASE = 11
export const BULLMQ_CASE = 12

export interface SuiteOptions {
  quick: boolean
  /** Case numbers to run; all when absent. */
  only?: number[]
  /** Progress, one line at a time. */
  log(line: string): void
}

export async function runSuite(options: SuiteOptions): Promise<Results> {
  const settings = options.quick ? QUICK : FULL
  const started = Date.now()
  const loadAverage = os.loadavg()
  const rows: Row[] = []
  let pipeline: Results['pipeline']
  for (const c of [...CASES, { n: PIPELINE_CASE, name: 'pipeline', run: undefined }].sort((a, b) => a.n - b.n)) {
    if (options.only !== undefined && !options.only.includes(c.n)) continue
    const t = Date.now()
    options.log(`case ${c.n}: ${c.name}…`)
    if (c.run !== undefined) rows.push(...(await c.run(settings)))
    else pipeline = await runPipeline(settings, options.log)
    options.log(`case ${c.n}: ${c.name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  let agentLoad: Results['agentLoad']
  if (options.only === undefined || options.only.includes(AGENT_LOAD_CASE)) {
    const t = Date.now()
    options.log(`case ${AGENT_LOAD_CASE}: agent under load…`)
    agentLoad = await runAgentLoad({ quick: options.quick, log: options.log })
    options.log(`case ${AGENT_LOAD_CASE}: agent under load done in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  let hops: Results['hops']
  if (options.only === undefined || options.only.includes(HOPS_CASE)) {
    const t = Date.now()
    options.log(`case ${HOPS_CASE}: NATS and HTTP hops…`)
    hops = await runHops(settings, options.log)
    options.log(`case ${HOPS_CASE}: NATS and HTTP hops done in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  let rabbitmq: Results['rabbitmq']
  if (options.only === undefined || options.only.includes(RABBITMQ_CASE)) {
    const t = Date.now()
    options.log(`case ${RABBITMQ_CASE}: RabbitMQ…`)
    rabbitmq = await runRabbitMq(settings, options.log)
    options.log(`case ${RABBITMQ_CASE}: RabbitMQ done in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  let bullmq: Results['bullmq']
  if (options.only === undefined || options.only.includes(BULLMQ_CASE)) {
    const t = Date.now()
    options.log(`case ${BULLMQ_CASE}: BullMQ jobs…`)
    bullmq = await runBullmq(settings, options.log)
    options.log(`case ${BULLMQ_CASE}: BullMQ jobs done in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  const require = createRequire(import.meta.url)
  return {
    suite: options.quick ? 'quick' : 'full',
    date: new Date(started).toISOString(),
    node: process.version,
    machine: {
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      loadAverage,
    },
    versions: {
      'dd-trace': DD_TRACE_VERSION,
      kafkajs: require('kafkajs/package.json').version,
      '@confluentinc/kafka-javascript': require('@confluentinc/kafka-javascript/package.json').version,
      benchmark: require('benchmark/package.json').version,
      nats: require('nats/package.json').version,
      // Their package exports list no package.json.
      amqplib: versionOf(require.resolve('amqplib')),
      rhea: versionOf(require.resolve('rhea')),
      bullmq: require('bullmq/package.json').version,
    },
    seconds: (Date.now() - started) / 1000,
    rows,
    targets: targets(rows, pipeline),
    ...(pipeline !== undefined && { pipeline }),
    ...(agentLoad !== undefined && { agentLoad }),
    ...(hops !== undefined && { hops }),
    ...(rabbitmq !== undefined && { rabbitmq }),
    ...(bullmq !== undefined && { bullmq }),
  }
}

/** The version in the package.json nearest above a package's entry file. */
function versionOf(entry: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  }
  return 'unknown'
}

/** The targets, each read from the rows (and the pipeline cells) that ran. */
export function targets(rows: Row[], pipeline: PipelineResults | undefined): Target[] {
  const out: Target[] = []
  const find = (n: number, prefix: string) => rows.find((r) => r.case === n && r.name.startsWith(prefix))
  const times = (v: number) => `${v.toFixed(1)}×`

  for (const [n, prefix, what] of [
    [1, 'Produce', 'Produce'],
    [2, 'Consume', 'Consume'],
  ] as const) {
    const row = find(n, prefix)
    if (row === undefined) continue
    const wasm = row.ratios['dd-trace/wasm']
    const ts = row.ratios['dd-trace/ts']
    out.push({
      name: `${what}: pathwise ≥ 20× faster than dd-trace's processor`,
      goal: '≥ 20×',
      measured: `Wasm core ${times(wasm.median)} (rounds ${times(wasm.min)}–${times(wasm.max)}), TS core ${times(ts.median)}`,
      met: wasm.median >= 20,
    })
  }

  const batch = find(3, 'Batch')
  if (batch !== undefined) {
    const r = batch.ratios['ts/wasm']
    out.push({
      name: 'Batch consume: the Wasm core ≥ 2× faster than the pure-TS core',
      goal: '≥ 2×',
      measured: `${times(r.median)} (rounds ${times(r.min)}–${times(r.max)})`,
      met: r.median >= 2,
    })
  }

  if (pipeline !== undefined) out.push(...pipelineTargets(pipeline))

  const stall = find(5, 'Flush of 50,000 points: longest')
  const stallP99 = find(5, 'Flush of 50,000 points: 99th')
  if (stall !== undefined && stallP99 !== undefined) {
    const ms = (row: Row, c: 'wasm' | 'ts' | 'dd-trace') => `${row.figures[c]!.median.toFixed(1)} ms`
    out.push({
      name: 'Flush of 50,000 points: the event loop waits at most 5 ms (longest and p99 delay while flushing)',
      goal: '≤ 5 ms',
      measured: `longest: Wasm core ${ms(stall, 'wasm')}, TS core ${ms(stall, 'ts')} (dd-trace ${ms(stall, 'dd-trace')}); p99: Wasm ${ms(stallP99, 'wasm')}, TS ${ms(stallP99, 'ts')}`,
      met: Math.max(stall.figures.wasm!.median, stallP99.figures.wasm!.median) <= 5,
    })
  }
  const cpu = find(5, 'Flush of 50,000 points: main-thread CPU')
  if (cpu !== undefined) {
    const us = (c: 'wasm' | 'ts' | 'dd-trace') => `${cpu.figures[c]!.median.toFixed(2)} µs`
    out.push({
      name: 'Flush of 50,000 points: at most 1 µs of main-thread CPU a point',
      goal: '≤ 1 µs',
      measured: `Wasm core ${us('wasm')}, TS core ${us('ts')} (dd-trace ${us('dd-trace')})`,
      met: cpu.figures.wasm!.median <= 1,
    })
  }

  const drained = find(8, 'Memory after a drain')
  if (drained !== undefined) {
    const wasm = drained.ratios['wasm drained/start'].median
    const ts = drained.ratios['ts drained/start'].median
    const dd = drained.ratios['dd-trace drained/start'].median
    const pct = (v: number) => `${v >= 1 ? '+' : ''}${((v - 1) * 100).toFixed(1)}%`
    out.push({
      name: 'Memory after a drain within 10% of the starting figure',
      goal: '≤ +10%',
      measured: `Wasm ${pct(wasm)}, TS ${pct(ts)} (dd-trace ${pct(dd)})`,
      met: wasm <= 1.1 && ts <= 1.1,
    })
  }
  return out
}
