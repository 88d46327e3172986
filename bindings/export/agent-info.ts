import type { Deadlines, Transport } from './exporter.js'

/**
 * What the Agent says of itself in `GET /info` that changes how stats are written: whether it
 * reads DDSketches' sparse form (the `binCounts` map), which only the pathwise agent says, and only
 * when it forwards nothing (a Datadog Agent behind it might not read it). Anything else (a Datadog
 * Agent, no answer, an error) means the contiguous form, which every reader takes.
 */

/** The `/info` field by which the pathwise agent says it reads the sparse form. */
export const SPARSE_SKETCHES_FIELD = 'pathwise_sparse_sketches'
/** An answer is trusted this long; a failed delivery since (the Agent went away, perhaps replaced) asks again sooner. */
export const INFO_TTL_MS = 60_000

export class AgentInfo {
  private readonly url: string
  private sparse = false
  private askedAt = -Infinity
  private failuresThen = 0
  private asking: Promise<boolean> | undefined

  constructor(
    agentUrl: string,
    private readonly transport: Transport,
    private readonly deadlines: Deadlines,
  ) {
    this.url = `${agentUrl.replace(/\/+$/, '')}/info`
  }

  /** The last answer, without asking: for a caller that cannot wait (the exit). */
  get sparseKnown(): boolean {
    return this.sparse
  }

  /**
   * Whether the Agent reads the sparse form: its `/info` is asked when the last answer is older
   * than INFO_TTL_MS, or when `failures` (the exporter's failed attempts so far) grew since. Never rejects.
   */
  sparseSketches(failures: number, now = Date.now()): Promise<boolean> {
    if (this.asking !== undefined) return this.asking
    if (now - this.askedAt < INFO_TTL_MS && failures === this.failuresThen) return Promise.resolve(this.sparse)
    this.askedAt = now
    this.failuresThen = failures
    this.asking = this.ask().finally(() => (this.asking = undefined))
    return this.asking
  }

  private async ask(): Promise<boolean> {
    try {
      const info = await this.transport.getJson(this.url, this.deadlines)
      this.sparse = typeof info === 'object' && info !== null && (info as Record<string, unknown>)[SPARSE_SKETCHES_FIELD] === true
    } catch {
      this.sparse = false
    }
    return this.sparse
  }
}
