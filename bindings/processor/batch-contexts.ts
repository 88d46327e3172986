/**
 * The contexts of a batch recorded in one pass (`DataStreamsProcessor#checkpointHeaders`): what
 * each message's context holds, kept in numbers, and a context object made only when one is
 * asked for (a handler, a produce, a message's stamp), one for each run of equal contexts.
 */
import { PathwayContext, type Direction } from '../pathway/context.js'

/** Numbers per message: hash halves, pathway start, the opposite hash's halves, the opposite edge start. */
export const FIELDS = 6

/** A batch's contexts by message index; null where no checkpoint was recorded. */
export interface BatchContexts {
  readonly length: number
  get(i: number): PathwayContext | null
}

export class RecordedBatch implements BatchContexts {
  /** The context of each run, at the index of its first message, once made. */
  private readonly made: (PathwayContext | undefined)[] = []

  /**
   * `fields`: FIELDS numbers a message, a NaN hash for one with no checkpoint. `runs[i]`: the index
   * of the first message of i's run (messages sent together arrive with equal contexts).
   */
  constructor(
    readonly length: number,
    private readonly fields: Float64Array,
    private readonly runs: Int32Array,
    private readonly edgeStartMs: number,
    private readonly direction: Direction,
  ) {}

  get(i: number): PathwayContext | null {
    // A number first: comparing anything else would convert it (a hostile index's toString can throw or run long).
    if (typeof i !== 'number' || !(i >= 0 && i < this.length)) return null
    const r = this.runs[i | 0]
    const q = r * FIELDS
    const f = this.fields
    if (f[q] !== f[q]) return null
    return (this.made[r] ??= new PathwayContext(f[q], f[q + 1], f[q + 2], this.edgeStartMs, this.direction, f[q + 3], f[q + 4], f[q + 5]))
  }
}

/** Whether messages a and b (their first field's index) hold the same context. */
export function sameFields(f: Float64Array, a: number, b: number): boolean {
  return f[a] === f[b] && f[a + 1] === f[b + 1] && f[a + 2] === f[b + 2] && f[a + 3] === f[b + 3] && f[a + 4] === f[b + 4] && f[a + 5] === f[b + 5]
}

/** The contexts of a batch recorded message by message. */
export function contextList(ctxs: readonly (PathwayContext | null)[]): BatchContexts {
  return { length: ctxs.length, get: (i) => (typeof i === 'number' && i >= 0 && i < ctxs.length ? (ctxs[i] ?? null) : null) }
}

/** A batch where nothing was recorded. */
export function noContexts(length: number): BatchContexts {
  return { length, get: () => null }
}
