import type { Summary } from '../views/api.js'
import type { Quantiles } from '../model/sketch.js'
import { printable } from './printable.js'

/**
 * `pathwise top`: the agent's `/api/summary` as a compact table in the terminal, redrawn every
 * interval: edges with throughput and latency, pathways with end-to-end latency, Kafka lag.
 * Quits on `q`, Ctrl-C or SIGINT, restoring the terminal. Whatever the agent sends goes through
 * `printable` first: names come from tracers, and a name must not drive the terminal.
 */

export interface TopOptions {
  agent: string
  rangeSeconds: number
  intervalMs: number
  /** Print one frame and exit: 0 when the agent answered, 1 when not. */
  once: boolean
  out?: NodeJS.WriteStream
  input?: NodeJS.ReadStream
  /** Where `COLUMNS` is read when the output is not a terminal. */
  env?: NodeJS.ProcessEnv
}

/** A piped frame's width when `COLUMNS` does not say. */
const PIPED_WIDTH = 120

/** The terminal's width; piped, `COLUMNS` (as a shell exports it) or PIPED_WIDTH. */
export function frameWidth(out: Pick<NodeJS.WriteStream, 'isTTY' | 'columns'>, env: NodeJS.ProcessEnv = process.env): number {
  if (out.isTTY && out.columns > 0) return out.columns
  const columns = Number(env.COLUMNS)
  return Number.isInteger(columns) && columns > 0 ? Math.min(columns, 1000) : PIPED_WIDTH
}

/** What went wrong, said whole: an error the answer names (a fleet view's Prometheus), or why the agent could not be read. */
class TopError extends Error {}

async function fetchSummary(agent: string, rangeSeconds: number): Promise<Summary> {
  let res: Response
  try {
    res = await fetch(new URL(`/api/summary?range=${rangeSeconds}`, agent), { signal: AbortSignal.timeout(3000) })
  } catch (err) {
    throw new TopError(`cannot read ${agent}: ${(err as Error).message}`)
  }
  if (res.ok) return (await res.json()) as Summary
  const text = await res.text()
  let answer: { error?: unknown; prometheus?: unknown } = {}
  try {
    answer = JSON.parse(text) as typeof answer
  } catch {
    // Not the agent's JSON: said as it came.
  }
  const error = typeof answer.error === 'string' ? answer.error : text.trim().slice(0, 200) || 'no reason given'
  if (typeof answer.prometheus === 'string') {
    const what = res.status === 503 ? 'is busy reading' : 'cannot read'
    throw new TopError(`the fleet view at ${agent} ${what} Prometheus at ${answer.prometheus}: ${error}`)
  }
  throw new TopError(`${agent} answered ${res.status}: ${error}`)
}

const problem = (err: unknown, agent: string): string => (err instanceof TopError ? err.message : `cannot read ${agent}: ${(err as Error).message}`)

export async function runTop(options: TopOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const input = options.input ?? process.stdin
  const width = (): number => frameWidth(out, options.env)
  if (options.once) {
    try {
      out.write(render(await fetchSummary(options.agent, options.rangeSeconds), options.agent, width(), false))
      return 0
    } catch (err) {
      process.stderr.write(`pathwise top: ${printable(problem(err, options.agent))}\n`)
      return 1
    }
  }
  const tty = out.isTTY === true
  // Keys are read from a terminal only: piped, the frames go on until the process is stopped.
  const interactive = tty && input.isTTY === true
  if (tty) out.write('\x1b[?1049h\x1b[?25l')
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      if (input.isTTY) input.setRawMode(false)
      input.off('data', onKey)
      input.pause()
      // A paused pipe still holds the event loop open; let the process end.
      ;(input as Partial<Pick<import('node:net').Socket, 'unref'>>).unref?.()
      process.off('SIGINT', stop)
      if (tty) out.write('\x1b[?25h\x1b[?1049l')
      resolve(0)
    }
    const onKey = (data: Buffer): void => {
      const key = data.toString()
      if (key === 'q' || key === 'Q' || key === '\u0003') stop()
    }
    if (input.isTTY) input.setRawMode(true)
    input.on('data', onKey)
    input.resume()
    process.once('SIGINT', stop)
    const draw = async (): Promise<void> => {
      let frame: string
      try {
        frame = render(await fetchSummary(options.agent, options.rangeSeconds), options.agent, width(), interactive)
      } catch (err) {
        frame = `pathwise top · ${options.agent}\n\n${printable(problem(err, options.agent))}\nretrying every ${options.intervalMs / 1000} s${interactive ? '; q to quit' : ''}\n`
      }
      if (stopped) return
      out.write(`\x1b[H\x1b[2J${frame}`)
      timer = setTimeout(draw, options.intervalMs)
    }
    void draw()
  })
}

const name = (id: string): string => id.replace(/^service:/, '')

/**
 * One frame, `columns` wide. A table's number columns go by priority: those that do not fit
 * beside a name of NAME_SHARE of the width are left out, lowest priority first (a pathway's
 * rate and latencies always stay); names are then cut in the middle with an ellipsis, so that
 * both ends of a pathway show.
 */
export function render(s: Summary, agent: string, columns: number, interactive: boolean): string {
  const lines: string[] = []
  const time = new Date(s.now).toLocaleTimeString()
  // The header's parts, the first to go first when it is too wide; "q quits" stays.
  const header = [`payloads ${s.status.payloads.accepted} accepted, ${s.status.payloads.rejected} rejected`, time, agent]
  const say = (): string => ['pathwise top', header[2], `last ${s.rangeSeconds} s`, header[1], header[0], interactive && 'q quits'].filter(Boolean).join(' · ')
  for (let i = 0; i < header.length && textWidth(say()) > columns; i++) header[i] = ''
  lines.push(cutEnd(say(), columns), '')
  lines.push(
    ...table(
      columns,
      [col('EDGE', 0), col('MSG/S', 1), col('P50', 3), col('P95', 5), col('P99', 2), col('SIZE P50', 6), col('LAG', 4)],
      s.edges.map((e) => [
        `${name(e.from)} → ${name(e.to)}${e.group ? ` [${e.group}]` : ''}`,
        rate(e.rate),
        ms(e.latency, 'p50'),
        ms(e.latency, 'p95'),
        ms(e.latency, 'p99'),
        e.payloadSize ? bytes(e.payloadSize.p50) : NONE,
        e.lag ? (e.lag.messages === null ? '?' : String(e.lag.messages)) : '',
      ]),
      'no edges yet: point a tracer at the agent',
    ),
    '',
  )
  lines.push(
    ...table(
      columns,
      [col('PATHWAY', 0), col('MSG/S', 1), col('E2E P50', 1), col('P95', 1), col('P99', 1)],
      s.pathways.map((p) => [
        `${p.nodes.map(name).join(' → ')}${p.approximate ? ' (≈)' : ''}${p.complete ? '' : ' (partial)'}`,
        rate(p.rate),
        ms(p.latency, 'p50'),
        ms(p.latency, 'p95'),
        ms(p.latency, 'p99'),
      ]),
      'no pathways yet',
    ),
    '',
  )
  if (s.lag.length > 0) {
    lines.push(
      ...table(
        columns,
        [col('LAG: GROUP', 0), col('TOPIC', 1), col('PARTITION', 1), col('MESSAGES', 1), col('SECONDS', 2)],
        s.lag.map((r) => [
          r.group,
          r.topic,
          r.partition,
          r.lagMessages === null ? '?' : String(r.lagMessages),
          r.lagSeconds === null ? '?' : r.lagSeconds.toFixed(1),
        ]),
        '',
      ),
    )
  }
  return lines.map((l) => cutEnd(l, columns)).join('\n') + '\n'
}

/** No value (an edge without latency: a first producer's). */
const NONE = '—'
/** The share of the width (and the fewest columns) a name keeps before number columns are left out. */
const NAME_SHARE = 0.45
const MIN_NAME = 16
const GAP = '  '

interface Column {
  title: string
  /** 0: the name (always shown); then 1 first. */
  priority: number
}
const col = (title: string, priority: number): Column => ({ title, priority })

/** Text in code points, so that a cut never splits a character in two. */
const chars = (text: string): string[] => [...text]
const textWidth = (text: string): number => chars(text).length

const padEnd = (text: string, width: number): string => text + ' '.repeat(Math.max(0, width - textWidth(text)))

function cutEnd(text: string, width: number): string {
  const c = chars(text)
  return c.length > width ? `${c.slice(0, Math.max(0, width - 1)).join('')}…` : text
}

function cutMiddle(text: string, width: number): string {
  const c = chars(text)
  if (c.length <= width) return text
  if (width <= 1) return '…'.slice(0, width)
  const head = Math.floor((width - 1) * 0.4)
  return `${c.slice(0, head).join('')}…${c.slice(c.length - (width - 1 - head)).join('')}`
}

/** Columns padded to their widest cell (printable only); the first left-aligned, the others right-aligned. */
function table(width: number, columns: Column[], data: string[][], empty: string): string[] {
  if (data.length === 0) return [columns[0].title, `  ${empty}`]
  const rows = data.map((r) => r.map(printable))
  const widths = columns.map((c, i) => Math.max(chars(c.title).length, ...rows.map((r) => chars(r[i]).length)))
  // A column empty in every row (lag, where no edge is a Kafka consumer's) is left out.
  const shown = columns.map((_, i) => i).filter((i) => i === 0 || rows.some((r) => r[i] !== ''))
  const numbers = (): number => shown.slice(1).reduce((sum, i) => sum + GAP.length + widths[i], 0)
  // Lowest priority first, while the name would get less than its share; priority 1 always stays.
  const share = Math.min(widths[0], Math.max(MIN_NAME, Math.floor(width * NAME_SHARE)))
  const order = shown.slice(1).sort((a, b) => columns[b].priority - columns[a].priority)
  for (const i of order) {
    if (width - numbers() >= share || columns[i].priority <= 1) break
    shown.splice(shown.indexOf(i), 1)
  }
  const nameWidth = Math.max(1, Math.min(widths[0], width - numbers()))
  const line = (cells: string[]): string =>
    shown
      .map((i) => (i === 0 ? padEnd(cutMiddle(cells[0], nameWidth), nameWidth) : cells[i].padStart(widths[i])))
      .join(GAP)
      .trimEnd()
  return [line(columns.map((c) => c.title)), ...rows.map(line)]
}

function rate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r.toFixed(1)
}

function ms(q: Quantiles | null, key: keyof Quantiles): string {
  if (!q) return NONE
  const v = q[key]
  if (v >= 1) return `${v.toFixed(2)} s`
  return `${(v * 1000).toFixed(v >= 0.1 ? 0 : 1)} ms`
}

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${Math.round(n)} B`
}
