/** The results as one Markdown table (readable in a terminal, pasted as is into BENCHMARKS.md). */
import type { Figure } from './harness.js'
import type { Column, Results, Row } from './results.js'

const COLUMNS: Column[] = ['wasm', 'ts', 'dd-trace']
const HEADINGS: Record<Column, string> = { wasm: 'pathwise Wasm', ts: 'pathwise TS', 'dd-trace': 'dd-trace' }

export function number(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 10_000) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

/** A figure: its median, and the range over rounds when there was more than one. */
function cell(f: Figure | undefined): string {
  if (f === undefined) return '–'
  return f.rounds.length > 1 ? `${number(f.median)} (${number(f.min)}–${number(f.max)})` : number(f.median)
}

function ratioCell(name: string, f: Figure): string {
  const percent = name.endsWith('%')
  const v = (x: number) => (percent ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}%` : `${number(x)}×`)
  const range = f.rounds.length > 1 ? ` (${v(f.min)}…${v(f.max)})` : ''
  return `${percent ? name.slice(0, -1).trim() : name} ${v(f.median)}${range}`
}

function line(row: Row): string {
  const ratios = Object.entries(row.ratios).map(([name, f]) => ratioCell(name, f))
  return `| ${row.case} | ${row.name} | ${row.unit} | ${COLUMNS.map((c) => cell(row.figures[c])).join(' | ')} | ${ratios.join('; ')} |`
}

export function table(results: Results): string {
  const head = `| # | case | unit | ${COLUMNS.map((c) => HEADINGS[c]).join(' | ')} | ratios (median, range over rounds) |`
  const rule = `|---|---|---|${COLUMNS.map(() => '---:').join('|')}|---|`
  return [head, rule, ...results.rows.map(line)].join('\n')
}

export function targetList(results: Results): string {
  return results.targets.map((t) => `- ${t.met ? 'MET' : 'MISSED'}: ${t.name} (goal ${t.goal}): ${t.measured}`).join('\n')
}

export function machineLine(results: Results): string {
  const m = results.machine
  return (
    `${results.suite} run, ${results.date}, Node ${results.node}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, ` +
    `load average at start ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')}, ${results.seconds.toFixed(0)} s; ` +
    Object.entries(results.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
  )
}
