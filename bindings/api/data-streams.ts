import type { Env } from './config.js'
import type { Backend } from '../core/types.js'
import type { Direction, PathwayContext } from '../pathway/context.js'
import type { Transport } from '../export/exporter.js'

/**
 * The DataStreams API: what every build (Node, edge) gives its users and what a runtime provides
 * (`Platform`). Types only: the factory is processor/create.ts.
 */

/** Where the context of the message being handled lives: AsyncLocalStorage in Node, nothing on the edge. */
export interface ContextStore {
  get(): PathwayContext | undefined
  /** Makes ctx current for the rest of the caller's async flow. */
  enter(ctx: PathwayContext): void
  run<T>(ctx: PathwayContext | undefined, fn: () => T): T
}

/**
 * What a DataStreams does as its process ends (Node, Bun: `bindings/node/exit-hooks.ts`). Shared
 * by every copy of pathwise in a process, so its shape changes only with the registry's version.
 */
export interface ExitHook {
  /** Where the payloads go, and with which headers (the exporter's). */
  readonly url: string
  readonly headers: Record<string, string>
  /** The longest the process waits for this DataStreams' stats once it has begun to end. */
  readonly timeoutMs: number
  /**
   * The event loop ran dry: sends what is new (or waits for the send in flight, leaving what is new
   * for later); undefined when there is nothing to do. The process is held meanwhile, within the bound.
   */
  drain(): Promise<void> | undefined
  /** The process ends now: what is still unsent, as msgpack payloads, for a synchronous send. */
  final(): Uint8Array[]
  warn(message: string): void
}

/** What a runtime provides: its environment, context store, HTTP transport, exit hook and hold. */
export interface Platform {
  env: Env
  store: ContextStore
  transport: Transport
  /** Registers what to do as the process ends; returns the way to stop. */
  onExit?(hook: ExitHook): () => void
  /** Keeps the process alive for at most ms, until the returned function is called; absent on the edge. */
  hold?(ms: number): () => void
  compiledWasm?: WebAssembly.Module
  /** The process's tags (ProcessTags) for a DataStreams of this service, where the runtime can state them (Node). */
  processTags?(service: string, serviceGiven: boolean): readonly string[]
}

/** A node of the pathway graph (service, env, edge tags) prepared once; transports cache these. */
export interface CheckpointNode {
  readonly id: number
  readonly direction: Direction
  readonly edgeTags: readonly string[]
  /** False once the DataStreams has forgotten the node (its node cache was full): it still works, but `node()` prepares it again. */
  readonly live: boolean
}

/** Overrides of the times a checkpoint measures from (Kinesis: the record's arrival time). */
export interface CheckpointTiming {
  pathwayStartMs?: number
  edgeStartMs?: number
}

export interface CheckpointOptions {
  /** The parent context; `null` starts a new pathway; absent, the current context (Node) is used. */
  parent?: PathwayContext | null
  /** Bytes the message carries, counted in the payload-size sketch. */
  payloadSize?: number
}

export type Carrier = Record<string, unknown>

export interface DataStreams {
  readonly enabled: boolean
  readonly service: string
  readonly env: string
  /** The core in use: 'wasm', or 'ts' where the Wasm core cannot run; null when disabled. */
  readonly backend: Backend | null
  /** Records direction:out + manual_checkpoint:true and writes the context into the carrier. */
  setProduceCheckpoint(type: string, target: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null
  /** Reads the carrier's context, records direction:in + manual_checkpoint:true and makes the new context current. */
  setConsumeCheckpoint(type: string, source: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null
  /** The general form: records a checkpoint with these edge tags and returns the new context. */
  setCheckpoint(
    edgeTags: readonly string[] | CheckpointNode,
    parent?: PathwayContext | null,
    payloadSize?: number,
    timing?: CheckpointTiming,
  ): PathwayContext | null
  /**
   * One checkpoint per message of a batch, all with the same edge tags and at the same time (the
   * batch's arrival), in one call into the core: `parents[i]` is message i's parent (null: none),
   * `payloadSizes[i]` its bytes. Returns the contexts in message order (all null if it failed).
   */
  setCheckpointBatch(
    edgeTags: readonly string[] | CheckpointNode,
    parents: readonly (PathwayContext | null)[],
    payloadSizes?: ArrayLike<number>,
  ): (PathwayContext | null)[]
  /** Prepares the node of these edge tags once, for callers that checkpoint the same tags often. */
  node(edgeTags: readonly string[]): CheckpointNode | null
  trackKafkaProduce(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void
  trackKafkaCommit(group: string, topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void
  /**
   * Records that the transaction `transactionId` reached the checkpoint `checkpointName` now, as
   * dd-trace-js's `trackTransaction`: the agent shows the latency between checkpoints of the same ids.
   */
  trackTransaction(transactionId: string, checkpointName: string): void
  /** A partition's high watermark (the offset its next message will get) as a consumer last fetched it: the lag without produce offsets. */
  trackKafkaHighWatermark(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void
  /**
   * A JetStream consumer's num_pending (the stream's messages it has not been delivered yet), as
   * every delivered message's metadata states it: the `nats_pending` backlog the agent shows as lag.
   */
  trackNatsPending(stream: string, consumer: string, pending: number): void
  /**
   * How many messages (jobs) a queue holds in a state, as sampled now (BullMQ's `waiting`, `delayed`,
   * `active`, `failed`): a `queue_depth` backlog, the highest sample of each bucket.
   */
  trackQueueDepth(queueType: string, queue: string, state: string, count: number): void
  /** The context of the message being handled, where the runtime tracks one. */
  currentContext(): PathwayContext | undefined
  /** Runs fn with ctx as the current context. */
  runWithContext<T>(ctx: PathwayContext | null | undefined, fn: () => T): T
  /** Makes ctx current for the rest of the caller's async flow (a consumer moving on to the next message of a batch). */
  enterContext(ctx: PathwayContext): void
  /** Sends everything recorded so far. Never rejects. */
  flush(): Promise<void>
  /** Stops the timer, sends everything and releases the core. Never rejects. */
  shutdown(): Promise<void>
  readonly stats: DataStreamsStats
}

export interface DataStreamsStats {
  readonly livePoints: number
  /** Checkpoints dropped by the cap on live stats points. */
  readonly droppedPoints: number
  readonly droppedPayloads: number
  /** Calls given what they cannot use (bad tags, times, sizes, carriers, options): refused or repaired, never thrown. */
  readonly invalidInputs: number
  /** Prepared nodes forgotten because the node cache reached `maxNodes`. */
  readonly evictedNodes: number
  /** Payloads the Agent may have received but did not confirm in time: never resent, so never counted twice. */
  readonly unconfirmedPayloads: number
  /** Kafka offsets dropped because a bucket already held MAX_BACKLOGS_PER_BUCKET backlog keys. */
  readonly droppedBacklogs: number
  /** trackTransaction calls dropped: a 255th checkpoint name, or a bucket's records past their cap (processor/transactions.ts). */
  readonly droppedTransactions: number
  /**
   * Messages an instrumentation sent without the pathway context because the context would have
   * pushed the message (or its batch) past a size limit, or because the broker refused it with the
   * context and it was sent again without: delivered, but their consumers start a new pathway.
   */
  readonly contextsLeftOut: number
  /**
   * Messages whose produce checkpoint was recorded (they count in the throughput) but whose send
   * finally failed, after the client's own retries. Also sent to the Agent, per service and
   * destination, as a `pathwise_failed_sends` backlog.
   */
  readonly failedSends: number
}
