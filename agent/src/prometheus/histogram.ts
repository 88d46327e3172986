import { keyValue, type SketchBins } from '../model/sketch.js'

/**
 * The classic Prometheus histograms of /metrics, written sparsely: a label set writes the `le` lines
 * from the lowest to the highest bucket that has ever held a value, and `+Inf`, never the others
 * (which hold nothing, or everything). A label set of latencies over a decade writes about 27 lines
 * where every bound would be 203; the readers (range-histograms.ts) still know every bucket's count.
 *
 * The bounds are log-spaced, 8 an octave (each about 2^(1/8) = 1.0905 times the one below, written
 * with 6 significant digits, which are the bounds counted against), with a bucket of its own for
 * 0 (`le="0"`): a first producer's edge latency is exactly 0, and the fleet view must tell it from
 * 100 µs. A bucket's geometric middle is within 2^(1/16) of anything in it: see README "Many hosts".
 */

/** Bounds are 2^(k / BUCKETS_PER_OCTAVE). */
export const BUCKETS_PER_OCTAVE = 8

/** The positive bounds from 2^lo to 2^hi, rounded as they are written. */
function bounds(lo: number, hi: number): Float64Array {
  const out = new Float64Array((hi - lo) * BUCKETS_PER_OCTAVE + 1)
  for (let i = 0; i < out.length; i++) out[i] = Number((2 ** (lo + i / BUCKETS_PER_OCTAVE)).toPrecision(6))
  return out
}

/**
 * Bucket bounds, and where a value falls: bucket 0 is `le="0"`, bucket i (1 to n) is `le=bounds[i-1]`,
 * bucket n + 1 is `+Inf`.
 */
export class Layout {
  readonly bounds: Float64Array
  /** The `le` text of each bucket. */
  readonly le: string[]
  private readonly keys = new Map<number, readonly [number, number]>()

  constructor(lo: number, hi: number) {
    this.bounds = bounds(lo, hi)
    this.le = ['0', ...[...this.bounds].map(String), '+Inf']
  }

  get size(): number {
    return this.bounds.length + 2
  }

  /** The bucket of `value`. */
  bucketOf(value: number): number {
    const b = this.bounds
    if (!(value > 0)) return Number.isNaN(value) ? b.length + 1 : 0
    if (value > b[b.length - 1]) return b.length + 1
    if (value <= b[0]) return 1
    let i = Math.ceil((Math.log2(value) - Math.log2(b[0])) * BUCKETS_PER_OCTAVE)
    // Rounding of the logarithm, and of the bounds, near a bound.
    while (i > 0 && value <= b[i - 1]) i--
    while (i < b.length && value > b[i]) i++
    return i + 1
  }

  /** The bucket an `le` label names, or -1. */
  bucketOfLe(le: string): number {
    if (le === '+Inf') return this.size - 1
    const v = Number(le)
    if (!(v >= 0) || !Number.isFinite(v)) return -1
    const i = this.bucketOf(v)
    return i === 0 || this.bounds[i - 1] === v ? i : -1
  }

  /** The geometric middle of a bucket (the ones beyond the ends are taken one bucket wide); 0 for the zero bucket. */
  middle(i: number): number {
    if (i <= 0) return 0
    const b = this.bounds
    const step = 2 ** (1 / BUCKETS_PER_OCTAVE)
    const lo = i >= 2 ? b[i - 2] : b[0] / step
    const hi = i <= b.length ? b[i - 1] : b[b.length - 1] * step
    return Math.sqrt(lo) * Math.sqrt(hi)
  }

  /** A sketch key's bucket and value: every sketch of the agent has the same 1% mapping, so each is computed once. */
  ofKey(key: number): readonly [number, number] {
    let known = this.keys.get(key)
    if (!known) {
      const value = keyValue(key)
      known = [this.bucketOf(value), value] as const
      if (this.keys.size < MAX_KEYS) this.keys.set(key, known)
    }
    return known
  }
}

/** Sketch keys whose bucket is remembered (a 1% sketch spans about 2,100 keys from 1 ns to 1,000 years). */
const MAX_KEYS = 10_000

/** Latency bounds: 2^-13 s (122 µs) to 2^12 s (68 min). */
export const LATENCY = new Layout(-13, 12)
/** Size bounds: 2^5 (32 B) to 2^24 (16 MiB). */
export const SIZE = new Layout(5, 24)

/**
 * Counts per bucket since the start, of the buckets from the lowest to the highest that has held a
 * value (grown as values arrive), their sum and total.
 */
export class Buckets {
  private counts = new Float64Array(0)
  /** The bucket `counts[0]` is. */
  private first = 0
  sum = 0
  count = 0

  constructor(private readonly layout: Layout) {}

  /** Adds `n` values at `value`. */
  add(value: number, n = 1): void {
    this.at(this.layout.bucketOf(value), n)
    this.sum += value * n
    this.count += n
  }

  /** Adds every bin of a sketch at its value (the value the intake gave it). */
  addSketch(sketch: SketchBins): void {
    if (sketch.zeroCount > 0) {
      this.at(0, sketch.zeroCount)
      this.count += sketch.zeroCount
    }
    sketch.forEachBin(this.addBin)
  }

  private readonly addBin = (key: number, n: number): void => {
    const [bucket, value] = this.layout.ofKey(key)
    this.at(bucket, n)
    this.sum += value * n
    this.count += n
  }

  private at(bucket: number, n: number): void {
    if (this.counts.length === 0) this.first = bucket
    const from = Math.min(this.first, bucket)
    const to = Math.max(this.first + this.counts.length, bucket + 1)
    if (from !== this.first || to !== this.first + this.counts.length) {
      const grown = new Float64Array(to - from)
      grown.set(this.counts, this.first - from)
      this.counts = grown
      this.first = from
    }
    this.counts[bucket - this.first] += n
  }

  /**
   * The `le` lines of a series named `bucket{labels` (its text up to the comma before `le`): `le="0"`
   * if a zero was counted, every positive bucket from the lowest to the highest that has held a
   * value (those between included, so that readers know the bucket after any written one), and +Inf.
   */
  write(prefix: string): string {
    const le = this.layout.le
    const inf = le.length - 1
    let out = ''
    let cumulative = 0
    let lo = -1
    let hi = -1
    for (let i = 0; i < this.counts.length; i++) {
      const b = this.first + i
      if (this.counts[i] > 0 && b > 0 && b < inf) {
        if (lo < 0) lo = b
        hi = b
      }
    }
    if (this.first === 0 && this.counts[0] > 0) {
      cumulative = this.counts[0]
      out += `${prefix}le="0"} ${cumulative}\n`
    }
    for (let b = lo; lo > 0 && b <= hi; b++) {
      cumulative += this.counts[b - this.first]
      out += `${prefix}le="${le[b]}"} ${cumulative}\n`
    }
    return `${out}${prefix}le="+Inf"} ${this.count}\n`
  }
}

/** A label value as the text exposition format writes it. */
export const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

/** Labels as written between braces, in the order given; empty values are left out (Prometheus reads them as absent). */
export function labelText(labels: ReadonlyArray<readonly [string, string]>): string {
  return labels
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')
}

/**
 * A histogram family whose label sets the caller keeps, written here rather than by prom-client:
 * prom-client's one object per sample took 24 s for 1,000 label sets of 200 buckets (README "Many hosts").
 */
export class HistogramFamily<T> {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly pick: (c: T) => Buckets,
  ) {}

  header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`
  }

  /** One label set's lines; `labels` as `labelText` writes them. */
  write(c: T, labels: string): string {
    const b = this.pick(c)
    const sep = labels === '' ? '' : ','
    return `${b.write(`${this.name}_bucket{${labels}${sep}`)}${this.name}_sum${labels === '' ? '' : `{${labels}}`} ${b.sum}\n${this.name}_count${labels === '' ? '' : `{${labels}}`} ${b.count}\n`
  }
}
