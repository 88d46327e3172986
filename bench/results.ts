import type { AgentLoadResults } from './agent-load.js'
import type { PipelineResults } from './cases/pipeline.js'
import type { HopsResults } from './cases/hops.js'
import type { RabbitMqResults } from './cases/rabbitmq.js'
import type { BullmqResults } from './cases/bullmq.js'
import { ratio, type Figure } from './harness.js'

/** The columns of the table: the two pathwise cores and dd-trace's processor. */
export type Column = 'wasm' | 'ts' | 'dd-trace'

export interface Row {
  /** The case number of the issue (1 to 8; 7 has its own tables). */
  case: number
  name: string
  unit: string
  figures: Partial<Record<Column, Figure>>
  /** Named ratios (`dd-trace/wasm`: how many times faster the Wasm core is), or percentages where named so. */
  ratios: Record<string, Figure>
  /** What else a reader needs to trust the row (sizes checked, rounds run). */
  notes?: string[]
}

/** The three ratios of a timing row whose figures are times (lower is better). */
export function timeRatios(f: Record<'wasm' | 'ts' | 'dd-trace', Figure>): Record<string, Figure> {
  return { 'dd-trace/wasm': ratio(f['dd-trace'], f.wasm), 'dd-trace/ts': ratio(f['dd-trace'], f.ts), 'ts/wasm': ratio(f.ts, f.wasm) }
}

export interface Target {
  name: string
  goal: string
  measured: string
  met: boolean
}

export interface Results {
  suite: 'full' | 'quick'
  date: string
  node: string
  machine: { cpuModel: string; cpus: number; memoryGiB: number; os: string; loadAverage: number[] }
  versions: Record<string, string>
  seconds: number
  rows: Row[]
  targets: Target[]
  /** Case 7, the pipeline (bench/cases/pipeline.ts), when it ran. */
  pipeline?: PipelineResults
  /** Case 9, the agent under load (bench/agent-load.ts), when it ran. */
  agentLoad?: AgentLoadResults
  /** Case 10, NATS and HTTP hops (bench/cases/hops.ts), when it ran. */
  hops?: HopsResults
  /** Case 11, RabbitMQ (bench/cases/rabbitmq.ts), when it ran. */
  rabbitmq?: RabbitMqResults
  /** Case 12, BullMQ jobs (bench/cases/bullmq.ts), when it ran. */
  bullmq?: BullmqResults
}
