import type { ResolvedConfig } from '../api/config.js'
import type { PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams, DataStreamsStats } from '../api/data-streams.js'
import { batchLength } from '../common/input.js'

/** With DSM off every call returns at once: no core, no timer, no memory. */
export class DisabledDataStreams implements DataStreams {
  readonly enabled = false
  readonly backend = null
  readonly service: string
  readonly env: string
  readonly stats: DataStreamsStats = {
    livePoints: 0,
    droppedPoints: 0,
    droppedPayloads: 0,
    unconfirmedPayloads: 0,
    invalidInputs: 0,
    evictedNodes: 0,
    droppedBacklogs: 0,
    droppedTransactions: 0,
    contextsLeftOut: 0,
    failedSends: 0,
  }
  constructor(config: ResolvedConfig) {
    this.service = config.service
    this.env = config.env
  }
  setProduceCheckpoint(): null {
    return null
  }
  setConsumeCheckpoint(): null {
    return null
  }
  setCheckpoint(): null {
    return null
  }
  setCheckpointBatch(_edgeTags: readonly string[] | CheckpointNode, parents: readonly (PathwayContext | null)[]): null[] {
    return new Array<null>(Math.max(0, batchLength(parents))).fill(null)
  }
  node(): null {
    return null
  }
  trackKafkaProduce(): void {}
  trackKafkaCommit(): void {}
  trackTransaction(): void {}
  trackKafkaHighWatermark(): void {}
  trackNatsPending(): void {}
  trackQueueDepth(): void {}
  currentContext(): undefined {
    return undefined
  }
  runWithContext<T>(_ctx: PathwayContext | null | undefined, fn: () => T): T {
    return typeof fn === 'function' ? fn() : (undefined as T)
  }
  enterContext(): void {}
  flush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}
