import type { Summary } from './api.js'
import type { Quantiles } from './sketch.js'
import { printable } from './terminal.js'

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
}

async function fetchSummary(agent: string, rangeSeconds: number): Promise<Summary> {
  const res = await fetch(new URL(`/api/summary?range=${rangeSeconds}`, agent), { signal: AbortSignal.timeout(3000) })
  if (!res.ok) throw new Error(`${res.status} from ${agent}`)
  return (await res.json()) as Summary
}

export async function runTop(options: TopOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const input = options.input ?? process.stdin
  if (options.once) {
    try {
      out.write(render(await fetchSummary(options.agent, options.rangeSeconds), options.agent, out.columns || 120))
      return 0
    } catch (err) {
      process.stderr.write(`pathwise top: cannot read ${options.agent}: ${printable((err as Error).message)}\n`)
      return 1
    }
  }
  const tty = out.isTTY === true
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
        frame = render(await fetchSummary(options.agent, options.rangeSeconds), options.agent, out.columns || 120)
      } catch (err) {
        frame = `pathwise top · ${options.agent}\n\ncannot read the agent: ${printable((err as Error).message)}\nretrying every ${options.intervalMs / 1000} s; q to quit\n`
      }
      if (stopped) return
      out.write(`\x1b[H\x1b[2J${frame}`)
      timer = setTimeout(draw, options.intervalMs)
    }
    void draw()
  })
}

const name = (id: string): string => id.replace(/^service:/, '')

export function render(s: Summary, agent: string, width: number): string {
  const lines: string[] = []
  const time = new Date(s.now).toLocaleTimeString()
  lines.push(
    `pathwise top · ${agent} · last ${s.rangeSeconds} s · ${time} · payloads ${s.status.payloads.accepted} accepted, ${s.status.payloads.rejected} rejected · q quits`,
    '',
  )
  lines.push(
    ...table(
      ['EDGE', 'MSG/S', 'P50', 'P95', 'P99', 'SIZE P50', 'LAG'],
      s.edges.map((e) => [
        `${name(e.from)} → ${name(e.to)}${e.group ? ` [${e.group}]` : ''}`,
        rate(e.rate),
        ms(e.latency, 'p50'),
        ms(e.latency, 'p95'),
        ms(e.latency, 'p99'),
        e.payloadSize ? bytes(e.payloadSize.p50) : '-',
        e.lag ? (e.lag.messages === null ? '?' : String(e.lag.messages)) : '',
      ]),
      'no edges yet: point a tracer at the agent',
    ),
    '',
  )
  lines.push(
    ...table(
      ['PATHWAY', 'MSG/S', 'E2E P50', 'P95', 'P99'],
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
        ['KAFKA LAG: GROUP', 'TOPIC', 'PARTITION', 'MESSAGES', 'SECONDS'],
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
  return lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l)).join('\n') + '\n'
}

/** Columns padded to their widest cell (printable only); the first left-aligned, the others right-aligned. */
function table(header: string[], data: string[][], empty: string): string[] {
  if (data.length === 0) return [header[0], `  ${empty}`]
  const rows = data.map((r) => r.map(printable))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)]
}

function rate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r.toFixed(1)
}

function ms(q: Quantiles | null, key: keyof Quantiles): string {
  if (!q) return '-'
  const v = q[key]
  if (v >= 1) return `${v.toFixed(2)} s`
  return `${(v * 1000).toFixed(v >= 0.1 ? 0 : 1)} ms`
}

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${Math.round(n)} B`
}
