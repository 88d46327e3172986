/** Case 7 on paper: its tables (Markdown, pasted as they are into BENCHMARKS.md) and the issue's targets read from it. */
import type { Figure } from '../harness.js'
import type { Target } from '../results.js'
import { number } from '../table.js'
import { CONFIGS, DERIVED, configLabel, quartiles, type Derived, type PipelineCell, type PipelineResults } from './pipeline.js'

/** Pathwise's own cost beyond carrying the header, per message, on Node 24. */
const BEYOND_HEADER_GOAL = { eachMessage: 1, eachBatch: 0.3 } as const
const RATIO_GOAL = 0.25

const major = (node: string) => node.replace(/^v/, '').split('.')[0]
const where = (c: PipelineCell) => `| ${major(c.node)} | ${c.client} | ${c.mode} |`

/** A median with its interquartile range when there was more than one round. */
function cell(f: Figure, format: (v: number) => string = number): string {
  if (f.rounds.length < 2) return format(f.median)
  const [q1, q3] = quartiles(f)
  return `${format(f.median)} (${format(q1)}…${format(q3)})`
}

const signed = (v: number) => `${v >= 0 ? '+' : ''}${number(v)}`
const times = (v: number) => `${v.toFixed(2)}×`

function table(head: string[], lines: string[]): string {
  return [`| Node | client | mode | ${head.join(' | ')} |`, `|---|---|---|${head.map(() => '---:').join('|')}|`, ...lines].join('\n')
}

/** CPU µs per message of the client process, per configuration, with the rounds run. */
export function pipelineCpuTable(p: PipelineResults): string {
  return table(
    [...CONFIGS.map(configLabel), 'rounds'],
    p.cells.map((c) => `${where(c)} ${CONFIGS.map((k) => cell(c.cpu[k])).join(' | ')} | ${c.rounds} |`),
  )
}

/** Thousands of messages per second over both phases, per configuration. */
export function pipelineThroughputTable(p: PipelineResults): string {
  return table(
    CONFIGS.map(configLabel),
    p.cells.map((c) => `${where(c)} ${CONFIGS.map((k) => cell(c.throughput[k], (v) => number(v / 1000))).join(' | ')} |`),
  )
}

const DERIVED_COLUMNS: Derived[] = ['pathwise DSM', 'dd-trace DSM', 'ratio', 'header', 'beyond header', 'without header', 'pathwise TS DSM', 'automatic mode', 'dd-trace tracing']

/** The figures derived within each round (µs per message; the ratio has no unit). */
export function pipelineDerivedTable(p: PipelineResults): string {
  return table(
    DERIVED_COLUMNS.map((d) => `${d}: ${DERIVED[d]}`),
    p.cells.map((c) => `${where(c)} ${DERIVED_COLUMNS.map((d) => cell(c.derived[d], d === 'ratio' ? times : signed)).join(' | ')} |`),
  )
}

export function pipelineNotes(p: PipelineResults): string[] {
  return p.cells.map(
    (c) =>
      `${c.node} ${c.client} ${c.mode}: ${c.rounds} rounds of ${c.messages.toLocaleString('en-US')} messages in ${c.replicates ?? 1} sets of processes; ` +
      `the spread (IQR) of pathwise's and dd-trace's DSM costs ${c.settled ? 'is' : 'is NOT'} smaller than the cost; ` +
      `seen on the messages: ${CONFIGS.map((k) => `${configLabel(k)} [${c.seen[k].join(', ')}]`).join('; ')}`,
  )
}

/** The targets: per client and mode, on Node 24 (dd-trace's own platform). */
export function pipelineTargets(p: PipelineResults): Target[] {
  const cells = p.cells.filter((c) => major(c.node) === '24')
  const range = (f: Figure, format: (v: number) => string) => {
    const [q1, q3] = quartiles(f)
    return f.rounds.length > 1 ? ` (IQR ${format(q1)}…${format(q3)}, ${f.rounds.length} rounds)` : ''
  }
  const µs = (v: number) => `${v.toFixed(2)} µs`
  return [
    ...cells.map((c) => {
      const r = c.derived.ratio
      return {
        name: `Pipeline, ${c.client} ${c.mode}, Node 24: pathwise's DSM cost ≤ 0.25× dd-trace's (pathwise − off ÷ (tracing and DSM − tracing))`,
        goal: `≤ ${RATIO_GOAL}×`,
        measured:
          `${times(r.median)}${range(r, times)}: pathwise +${µs(c.derived['pathwise DSM'].median)}, ` +
          `dd-trace +${µs(c.derived['dd-trace DSM'].median)} a message`,
        met: r.median <= RATIO_GOAL,
      }
    }),
    ...cells.map((c) => {
      const f = c.derived['beyond header']
      const goal = BEYOND_HEADER_GOAL[c.mode]
      return {
        name: `Pipeline, ${c.client} ${c.mode}, Node 24: pathwise's own cost beyond carrying the header ≤ ${goal} µs a message`,
        goal: `≤ ${goal} µs`,
        measured: `${µs(f.median)}${range(f, µs)} (pathwise +${µs(c.derived['pathwise DSM'].median)}, the header alone +${µs(c.derived.header.median)})`,
        met: f.median <= goal,
      }
    }),
  ]
}
