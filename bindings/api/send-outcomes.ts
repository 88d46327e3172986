import type { CheckpointNode } from './data-streams.js'

/**
 * What the transport wrappers tell a DataStreams about the sends they instrument, beyond the
 * checkpoints: messages that went without their pathway context because of a size limit, and
 * messages whose produce checkpoint was recorded but whose send finally failed (a checkpoint
 * cannot be taken back from its sketches, so the failure is counted beside it). Under a symbol,
 * so that it is no part of the public API; process-wide, so that the automatic mode's copy of
 * pathwise and the application's reach each other's.
 */
export const SEND_OUTCOMES = Symbol.for('pathwise.sendOutcomes')

export interface SendOutcomes {
  /** `count` messages were sent without their context: it would have pushed them past a size limit, or a broker refused them with it. */
  contextsLeftOut(count: number): void
  /** `count` messages checkpointed at `node` were not sent after all (the client gave up). */
  failedSends(node: CheckpointNode, count: number): void
}
