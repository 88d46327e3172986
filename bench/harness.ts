/**
 * Timing and statistics shared by the cases. The machine is shared and noisy, so nothing here
 * trusts one absolute figure: implementations run in interleaved rounds (the order rotates each
 * round, so load and GC debt fall on all alike), figures are medians over rounds, and ratios are
 * taken within a round, then their median.
 */
import Benchmark from 'benchmark'

export interface Settings {
  quick: boolean
  /** Interleaved rounds of the micro-benchmarks. */
  rounds: number
  /** Benchmark.js: seconds per measurement, and the samples it must take at least. */
  maxTime: number
  minSamples: number
  minTime: number
}

export const FULL: Settings = { quick: false, rounds: 7, maxTime: 0.5, minSamples: 5, minTime: 0.05 }
export const QUICK: Settings = { quick: true, rounds: 2, maxTime: 0.05, minSamples: 2, minTime: 0.01 }

/** One implementation's figure: the median over rounds, their range, and every round's value. */
export interface Figure {
  median: number
  min: number
  max: number
  rounds: number[]
}

export function figure(values: readonly number[]): Figure {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1], rounds: [...values] }
}

/** Per round, a[r] / b[r]: a ratio of two figures measured side by side. */
export function ratio(a: Figure, b: Figure): Figure {
  return figure(a.rounds.map((v, r) => v / b.rounds[r]))
}

/** Mean and the half-width of its 95% confidence interval (Student's t), for spreads of repeated runs. */
export function meanInterval(values: readonly number[]): { mean: number; halfWidth: number } {
  const n = values.length
  const mean = values.reduce((s, v) => s + v, 0) / n
  if (n < 2) return { mean, halfWidth: Infinity }
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)
  return { mean, halfWidth: tQuantile975(n - 1) * Math.sqrt(variance / n) }
}

/** Two-sided 95% quantiles of Student's t for small degrees of freedom; 1.96 beyond. */
function tQuantile975(df: number): number {
  const table = [12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.2, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.1, 2.09, 2.09]
  return df <= table.length ? table[df - 1] : df < 40 ? 2.04 : 1.96
}

/**
 * Nanoseconds per operation of each body, Benchmark.js measuring each; a body does `opsPerCall`
 * operations (a loop, so that the call itself is not what is timed).
 */
export function compare<K extends string>(bodies: Record<K, () => void>, opsPerCall: number, s: Settings): Record<K, Figure> {
  const names = Object.keys(bodies) as K[]
  const perRound = new Map<K, number[]>(names.map((n) => [n, []]))
  for (let round = 0; round < s.rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]
      const bench = new Benchmark(name, bodies[name], { maxTime: s.maxTime, minSamples: s.minSamples, minTime: s.minTime, initCount: 1 })
      bench.run()
      if (bench.error) throw bench.error
      perRound.get(name)!.push(1e9 / (bench.hz * opsPerCall))
    }
  }
  return Object.fromEntries(names.map((n) => [n, figure(perRound.get(n)!)])) as Record<K, Figure>
}

/**
 * Milliseconds of one timed step per implementation, in interleaved rounds: `prepare` (not
 * timed) sets the step up, then `step` is timed, awaited if it returns a promise. A first round,
 * not counted, warms every subject up.
 */
export async function compareSteps<K extends string>(
  subjects: Record<K, { prepare(): void | Promise<void>; step(): void | Promise<void> }>,
  rounds: number,
): Promise<Record<K, Figure>> {
  const names = Object.keys(subjects) as K[]
  for (const name of names) {
    await subjects[name].prepare()
    await subjects[name].step()
  }
  const perRound = new Map<K, number[]>(names.map((n) => [n, []]))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]
      await subjects[name].prepare()
      const start = process.hrtime.bigint()
      await subjects[name].step()
      perRound.get(name)!.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
  }
  return Object.fromEntries(names.map((n) => [n, figure(perRound.get(n)!)])) as Record<K, Figure>
}
