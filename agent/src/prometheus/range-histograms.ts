import type { Layout } from './histogram.js'
import type { Lease, PromqlClient } from './promql.js'

/**
 * What a histogram family of metrics.ts counted over a range, per label set, summed over the agents
 * that wrote it, read exactly from the sparse buckets of histogram.ts.
 *
 * An agent writes a label set's `le` lines from the lowest to the highest positive bucket that has
 * held a value (and `le="0"` for zeros), so its counts cannot be summed across agents by `le` in
 * PromQL: each agent's series is read apart, then added. Over a range, a bucket's messages are
 * `m - m offset <range>`, and only the buckets that say something are asked for: those holding
 * some of the range's messages and not all of them. A series whose buckets were not all written
 * at the range's start (it was born, reached a new lowest or highest value, or its agent
 * restarted within the range) is asked for whole, at both ends, and read here: a bucket not
 * written then held nothing then, so its count then is the count of the bucket below it.
 */

export interface Sample {
  metric: Record<string, string>
  /** (seconds since the epoch, value). */
  points: Array<[number, number]>
}

/** A label set's messages over the range: their number, and per bucket of the layout. */
export interface RangeHistogram {
  /** The labels of one of the agents' series. */
  labels: Record<string, string>
  count: number
  buckets: Map<number, number>
}

export interface FamilyQuery {
  /** The family's name, without `_bucket`, `_count` or `_sum`. */
  name: string
  layout: Layout
  /** Matchers inside the braces (`pathway_hash=~"0.*"`), or ''. */
  matcher?: string
  /** The key of a label set, or null for labels that are not the family's. */
  keyOf(labels: Record<string, string>): string | null
}

/** The five queries of a family over `rangeMs` up to each evaluation time. */
function queries(q: FamilyQuery, rangeMs: number): Record<'totals' | 'sums' | 'informative' | 'wholeNow' | 'wholeThen', string> {
  const sel = (suffix: string): string => `${q.name}_${suffix}{${q.matcher ?? ''}}`
  const off = `offset ${Math.round(rangeMs)}ms`
  const [m, c, s] = [sel('bucket'), sel('count'), sel('sum')]
  const unwritten = `(${m} unless ${m} ${off}) or (${c} < ${c} ${off})`
  return {
    totals: `((${c} - ${c} ${off}) >= 0) or ${c}`,
    sums: `((${s} - ${s} ${off}) >= 0) or ${s}`,
    informative: `(${m} - ${m} ${off}) > 0 < ignoring(le) group_left() (${c} - ${c} ${off})`,
    wholeNow: `${m} and ignoring(le) (${unwritten})`,
    wholeThen: `(${m} ${off}) and ignoring(le) (${m} unless ${m} ${off})`,
  }
}

/** An agent's series: its labels but `__name__` and `le`. */
export function signature(metric: Record<string, string>, leave = 'le'): string {
  let out = ''
  for (const k of Object.keys(metric).sort()) if (k !== '__name__' && k !== leave) out += `${k}=${JSON.stringify(metric[k])},`
  return out
}

type Asker = (query: string) => Promise<Sample[]>

/** Reads a family at one time (`instant`) or every step of a range (`range`); see `readFamily`. */
export function instantAsker(client: PromqlClient, t: number, lease: Lease): Asker {
  return async (query) => (await client.instant(query, t, lease)).map((s) => ({ metric: s.metric, points: [[t, s.value]] }))
}

export function rangeAsker(client: PromqlClient, start: number, end: number, step: number, lease: Lease): Asker {
  return async (query) => (await client.range(query, start, end, step, lease)).map((s) => ({ metric: s.metric, points: s.values }))
}

interface AgentSeries {
  labels: Record<string, string>
  total: number
  sum: number
  informative: Array<[number, number]>
  now: Map<number, number> | null
  then: Map<number, number>
}

/** The family over `rangeMs` up to each time `ask` evaluates at: time (s) → label set key → its messages. */
export async function readFamily(ask: Asker, q: FamilyQuery, rangeMs: number): Promise<Map<number, Map<string, RangeHistogram>>> {
  const text = queries(q, rangeMs)
  const [totals, sums, informative, wholeNow, wholeThen] = await Promise.all([
    ask(text.totals),
    ask(text.sums),
    ask(text.informative),
    ask(text.wholeNow),
    ask(text.wholeThen),
  ])
  const byTime = new Map<number, Map<string, AgentSeries>>()
  const at = (time: number, metric: Record<string, string>, create: boolean): AgentSeries | undefined => {
    let series = byTime.get(time)
    if (!series) {
      if (!create) return undefined
      byTime.set(time, (series = new Map()))
    }
    const sig = signature(metric)
    let s = series.get(sig)
    if (!s && create) series.set(sig, (s = { labels: metric, total: 0, sum: 0, informative: [], now: null, then: new Map() }))
    return s
  }
  for (const { metric, points } of totals) for (const [t, v] of points) if (v >= 0 && Number.isFinite(v)) at(t, metric, true)!.total = v
  for (const { metric, points } of sums) {
    for (const [t, v] of points) {
      const s = at(t, metric, false)
      if (s && Number.isFinite(v)) s.sum = v
    }
  }
  const bucketed = (answer: Sample[], add: (s: AgentSeries, bucket: number, v: number) => void): void => {
    for (const { metric, points } of answer) {
      const bucket = q.layout.bucketOfLe(metric.le ?? '')
      if (bucket < 0) continue
      for (const [t, v] of points) {
        const s = at(t, metric, false)
        if (s && v >= 0 && Number.isFinite(v)) add(s, bucket, v)
      }
    }
  }
  bucketed(informative, (s, b, v) => s.informative.push([b, v]))
  bucketed(wholeNow, (s, b, v) => (s.now ??= new Map()).set(b, v))
  bucketed(wholeThen, (s, b, v) => s.then.set(b, v))

  const out = new Map<number, Map<string, RangeHistogram>>()
  for (const [time, series] of byTime) {
    const sets = new Map<string, RangeHistogram>()
    out.set(time, sets)
    for (const s of series.values()) {
      const key = q.keyOf(s.labels)
      if (key === null) continue
      let h = sets.get(key)
      if (!h) sets.set(key, (h = { labels: s.labels, count: 0, buckets: new Map() }))
      h.count += s.total
      const counts = s.now ? fromWhole(s.now, s.then, s.total, q.layout) : fromInformative(s, q.layout)
      for (const [b, n] of counts) if (n > 0) h.buckets.set(b, (h.buckets.get(b) ?? 0) + n)
    }
  }
  return out
}

/** Per bucket, from the informative buckets' counts (consecutive written buckets, see the comment above). */
function fromInformative(s: AgentSeries, layout: Layout): Array<[number, number]> {
  const sorted = s.informative.sort((a, b) => a[0] - b[0])
  const out: Array<[number, number]> = []
  let below = 0
  for (const [b, cumulative] of sorted) {
    if (cumulative > below) out.push([b, cumulative - below])
    below = Math.max(below, cumulative)
  }
  const last = sorted.length > 0 ? sorted[sorted.length - 1][0] : -1
  const rest = s.total - below
  if (rest <= 0) return out
  // The rest is all in the next written bucket: the next one, or (none informative, or only the zero bucket) the one their mean is in.
  const next = last > 0 ? last + 1 : s.sum > 0 ? layout.bucketOf(s.sum / rest) : 0
  out.push([Math.min(next, layout.size - 1), rest])
  return out
}

/** Per bucket, from every written bucket now and then; a series whose count went down restarted, and is read from now alone. */
function fromWhole(now: Map<number, number>, then: Map<number, number>, total: number, layout: Layout): Array<[number, number]> {
  const thenSorted = [...then].sort((a, b) => a[0] - b[0])
  const thenAt = (b: number): number => {
    let v = 0
    for (const [tb, tv] of thenSorted) if (tb <= b) v = tv
    return v
  }
  const inf = layout.size - 1
  const nowSorted = [...now].filter(([b]) => b !== inf).sort((a, b) => a[0] - b[0])
  const restarted = nowSorted.some(([b, v]) => v < thenAt(b))
  const out: Array<[number, number]> = []
  let below = 0
  for (const [b, v] of nowSorted) {
    const inRange = restarted ? v : v - thenAt(b)
    if (inRange > below) out.push([b, inRange - below])
    below = Math.max(below, inRange)
  }
  if (total > below) out.push([inf, total - below])
  return out
}
