/**
 * A BullMQ job's journey, through BullMQ's own telemetry interface (the `telemetry` option of a
 * Queue, Worker or FlowProducer: bullmq's `Telemetry`, a tracer and a context manager). BullMQ asks
 * its telemetry for the metadata to store in each job it adds (`ContextManager.getMetadata` on the
 * PRODUCER span of Queue.add, Queue.addBulk, each node of a flow, a job scheduler's job) and hands
 * that metadata back when a Worker processes the job (`fromMetadata`, then a CONSUMER span whose
 * context `ContextManager.with` makes current around the processor). So:
 *
 * - produce: where the metadata is asked for, a checkpoint `direction:out, topic:<queue>,
 *   type:bullmq`, its context written as `{"_datadog":{"dd-pathway-ctx-base64":"…"}}`, the carrier
 *   dd-trace-js 6.21 writes into `opts.telemetry.metadata`;
 * - consume: where the CONSUMER span is put on the job's context, a checkpoint `direction:in,
 *   topic:<queue>, type:bullmq` whose parent is the job's `_datadog` (a new pathway without one);
 *   that context is current for the processor (and `contextOf(job)`).
 *
 * An application's own telemetry (an OpenTelemetry adapter) is composed: every call goes on to it
 * with its own contexts and spans, and `_datadog` is one more key of its JSON metadata. What BullMQ's
 * interface does not show, the jobs themselves, BullMQ's public methods hand over (handoff.ts).
 *
 * Retries: BullMQ stores a new metadata on a failed attempt only when its telemetry gives one for
 * the retry's INTERNAL span; pathwise gives none (with an application's telemetry, that telemetry's
 * with the job's own `_datadog` kept), so every attempt is consumed from the job's add. A job
 * scheduler's jobs carry no context (`scheduled`): each iteration would reuse the first one's.
 */
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { PATHWAY_KEY, encodePathwayContext, extractPathwayContext, type PathwayContext } from '../pathway/context.js'
import { parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import { errorText, isRecord, read } from '../common/input.js'
import { createLogger } from '../common/logger.js'
import { NOT_JSON, jsonSize } from './data-size.js'
import { currentFlow, take, type AddedJob, type Carriage, type Recorded } from './handoff.js'
import { contextsLeftOut } from '../instrument/send-outcomes.js'

/** Where the BullMQ instrumentation reports trouble: once per kind, and BullMQ goes on. */
export const log = createLogger(false)

export function fail(step: string, err: unknown): void {
  log.warnOnce(`bullmq:${step}`, `bullmq ${step} failed, continuing without it: ${errorText(err)}`)
}

/** BullMQ's SpanKind values (its enums/telemetry-attributes). */
const PRODUCER = 3
const CONSUMER = 4
const QUEUE_NAME = 'bullmq.queue.name'
const DATADOG_KEY = '_datadog'
/** Longer metadata is not searched for a context: BullMQ's own is under 200 bytes. */
const MAX_METADATA = 65_536

/** Marks a telemetry made here, process-wide, so that the automatic mode's copy of pathwise and the application's never wrap each other's. */
const PATHWISE_TELEMETRY = Symbol.for('pathwise.bullmq.telemetry')

// bullmq's Telemetry interface (interfaces/telemetry.d.ts), as far as it is used here.
interface InnerSpan {
  setSpanOnContext(ctx: unknown): unknown
  setAttribute(key: string, value: unknown): void
  setAttributes(attributes: unknown): void
  addEvent(name: string, attributes?: unknown): void
  recordException(exception: unknown, time?: unknown): void
  end(): void
}
interface InnerTracer {
  startSpan(name: string, options?: unknown, context?: unknown): InnerSpan
}
interface InnerContextManager {
  with<T>(context: unknown, fn: () => T): T
  active(): unknown
  root?(): unknown
  getMetadata(context: unknown): string
  fromMetadata(active: unknown, metadata: string): unknown
}

/** What the telemetries of one instrumentation share. */
export interface BullmqJourney {
  readonly dsm: DataStreams
  readonly active: () => boolean
  readonly nodes: TransportNodes<QueueNodes>
}

interface QueueNodes {
  out: CheckpointNode | null
  in: CheckpointNode | null
}

export function queueNodes(dsm: DataStreams): TransportNodes<QueueNodes> {
  return new TransportNodes<QueueNodes>(
    (queue) => ({ out: dsm.node(['direction:out', `topic:${queue}`, 'type:bullmq']), in: dsm.node(['direction:in', `topic:${queue}`, 'type:bullmq']) }),
    (nodes) => isLive(nodes.out) && isLive(nodes.in),
  )
}

/** The context BullMQ carries for this telemetry: the application telemetry's, pathwise's, and a job's metadata where one was read. */
class JobContext {
  constructor(
    readonly inner: unknown,
    readonly pathway: PathwayContext | undefined,
    readonly metadata?: string,
    readonly span?: JobSpan,
  ) {}
}

class JobSpan {
  queue: string | undefined

  constructor(
    private readonly telemetry: PathwiseTelemetry,
    readonly kind: unknown,
    readonly name: unknown,
    readonly inner: InnerSpan | undefined,
  ) {}

  setSpanOnContext(ctx: JobContext): JobContext {
    const inner = this.inner === undefined ? ctx.inner : this.inner.setSpanOnContext(ctx.inner)
    const pathway = this.kind === CONSUMER ? this.telemetry.consume(this, ctx) : ctx.pathway
    return new JobContext(inner, pathway, ctx.metadata, this)
  }

  setAttribute(key: string, value: unknown): void {
    if (key === QUEUE_NAME && typeof value === 'string') this.queue = value
    this.inner?.setAttribute(key, value)
  }

  setAttributes(attributes: unknown): void {
    const queue = read(attributes, QUEUE_NAME)
    if (typeof queue === 'string') this.queue = queue
    this.inner?.setAttributes(attributes)
  }

  addEvent(name: string, attributes?: unknown): void {
    this.inner?.addEvent(name, attributes)
  }

  recordException(exception: unknown, time?: unknown): void {
    this.inner?.recordException(exception, time)
  }

  end(): void {
    this.inner?.end()
  }

  /** The queue: from BullMQ's attribute, else the span name's last word (`add orders.job`: BullMQ names spans `<operation> <destination>`). */
  queueName(): string {
    if (this.queue !== undefined) return this.queue
    const name = typeof this.name === 'string' ? this.name : ''
    return name.slice(name.indexOf(' ') + 1) || 'bullmq'
  }
}

/** The consume contexts of jobs whose `_datadog` a retry must keep beside an application telemetry's new metadata. */
const carriedOf = new WeakMap<PathwayContext, Record<string, unknown>>()

/**
 * BullMQ's Telemetry for one Queue, Worker, FlowProducer or job scheduler, composed with the
 * application's own (`inner`). `scheduled`: a job scheduler's, whose jobs carry no context.
 */
export class PathwiseTelemetry {
  readonly [PATHWISE_TELEMETRY] = true
  readonly tracer: { startSpan(name: string, options?: unknown, context?: JobContext): JobSpan }
  readonly contextManager: {
    with<T>(context: JobContext, fn: () => T): T
    active(): JobContext
    root(): JobContext
    getMetadata(context: JobContext): string
    fromMetadata(active: JobContext, metadata: string): JobContext
  }
  private readonly innerTracer: InnerTracer | undefined
  private readonly innerContexts: InnerContextManager | undefined

  constructor(
    private readonly journey: BullmqJourney,
    /** The application's telemetry, handed on everything. */
    readonly inner: unknown,
    readonly scheduled = false,
  ) {
    const tracer = read(inner, 'tracer')
    const contexts = read(inner, 'contextManager')
    // BullMQ needs both to trace; with one missing the application's telemetry only measures (its meter).
    const traces = isRecord(tracer) && isRecord(contexts)
    this.innerTracer = traces ? (tracer as InnerTracer) : undefined
    this.innerContexts = traces ? (contexts as InnerContextManager) : undefined
    this.tracer = { startSpan: (name, options, context) => this.startSpan(name, options, context) }
    this.contextManager = {
      with: (context, fn) => this.with(context, fn),
      active: () => new JobContext(this.innerContexts?.active(), journey.dsm.currentContext()),
      root: () => {
        const contexts = this.innerContexts
        // BullMQ keeps the active context for a telemetry without root(): so does the composition.
        return new JobContext(contexts === undefined ? undefined : typeof contexts.root === 'function' ? contexts.root() : contexts.active(), undefined)
      },
      getMetadata: (context) => this.getMetadata(context),
      fromMetadata: (active, metadata) => new JobContext(this.innerContexts?.fromMetadata(active?.inner, metadata), active?.pathway, metadata),
    }
  }

  /** The application telemetry's meter: BullMQ's job counters and durations go to it alone. */
  get meter(): unknown {
    return read(this.inner, 'meter')
  }

  private startSpan(name: string, options: unknown, context: JobContext | undefined): JobSpan {
    const inner = this.innerTracer?.startSpan(name, options, context === undefined ? undefined : context.inner)
    return new JobSpan(this, read(options, 'kind'), name, inner)
  }

  private with<T>(context: JobContext, fn: () => T): T {
    const dsm = this.journey.dsm
    const pathway = context?.pathway
    const run = pathway === dsm.currentContext() ? fn : () => dsm.runWithContext(pathway, fn)
    return this.innerContexts === undefined ? run() : this.innerContexts.with(context?.inner, run)
  }

  private getMetadata(context: JobContext): string {
    const inner = this.innerContexts?.getMetadata(context?.inner)
    if (!this.journey.active()) return inner ?? ''
    try {
      if (context?.span?.kind === PRODUCER) return this.scheduled ? (inner ?? '') : this.produce(context.span, inner)
      // A retry's INTERNAL span: BullMQ stores what is given here as the job's metadata, so the job's own `_datadog` stays.
      const carried = inner ? carriedOf.get(context?.pathway as PathwayContext) : undefined
      return (carried === undefined ? undefined : withDatadog(inner, carried)) ?? inner ?? ''
    } catch (err) {
      fail('add', err)
      return inner ?? ''
    }
  }

  /**
   * The produce checkpoints of the jobs the call adds (one for Queue.add and each flow node, one per
   * job of an addBulk), and the metadata that carries their context: none where BullMQ will not
   * carry it (handoff.ts Carriage: counted in stats.contextsLeftOut), nothing at all for data
   * BullMQ will refuse to store (the add then throws, as without pathwise).
   */
  private produce(span: JobSpan, inner: string | undefined): string {
    const { dsm, nodes } = this.journey
    const queue = span.queueName()
    const node = nodes.get(queue).out
    const call = take()
    const flow = call === undefined ? currentFlow() : undefined
    let jobs: AddedJob[]
    let recorded: Recorded[] | undefined
    if (call !== undefined && 'jobs' in call) [jobs, recorded] = [call.jobs, call.recorded]
    else if (flow !== undefined) [jobs, recorded] = [flow.byQueue.get(queue)?.splice(0, 1) ?? [], flow.recorded]
    // A call that handed nothing over (a subclass's own add): one job of unknown size.
    else jobs = [{ size: 0, carriage: 'carried' }]
    if (node === null || jobs.length === 0 || jobs.some((job) => job.size === NOT_JSON)) return inner ?? ''
    const parent = parentForSend(dsm)
    const ctx = jobs.length === 1 ? dsm.setCheckpoint(node, parent, jobs[0].size) : dsm.setCheckpointBatch(node, new Array<PathwayContext | null>(jobs.length).fill(parent), jobs.map((job) => job.size))[0]
    if (ctx === null) return inner ?? ''
    recorded?.push({ node, count: jobs.length })
    // BullMQ reads a job's telemetry options only when given a context: one it cannot read gets none, nor its call's others.
    const unreadable = jobs.some((job) => job.carriage === 'unreadable')
    const metadata = unreadable ? undefined : withDatadog(inner, { [PATHWAY_KEY]: encodePathwayContext(ctx) })
    leftOut(dsm, queue, metadata === undefined ? jobs.map(() => (unreadable ? 'unreadable' : 'not json')) : jobs.map((job) => job.carriage))
    return metadata ?? inner ?? ''
  }

  /** The consume checkpoint of the job whose CONSUMER span this is; its context, current around the processor. */
  consume(span: JobSpan, ctx: JobContext): PathwayContext | undefined {
    if (!this.journey.active()) return ctx.pathway
    try {
      const { dsm, nodes } = this.journey
      const what = take()
      const job = what !== undefined && 'job' in what ? what.job : undefined
      const carried = ctx.metadata === undefined ? undefined : carrierOf(ctx.metadata)
      const parent = carried === undefined ? null : extractPathwayContext(carried)
      const node = nodes.get(span.queueName()).in
      const consumed = node === null ? null : dsm.setCheckpoint(node, parent, job === undefined ? 0 : Math.max(0, jsonSize(read(job, 'data'))))
      if (consumed === null) return undefined
      if (job !== undefined) rememberMessageContext(job, consumed)
      if (carried !== undefined && this.innerContexts !== undefined) carriedOf.set(consumed, carried)
      return consumed
    } catch (err) {
      fail('process', err)
      return undefined
    }
  }
}

/** Whether a telemetry is one of pathwise's (of any copy of pathwise). */
export function isPathwiseTelemetry(telemetry: unknown): telemetry is PathwiseTelemetry {
  return read(telemetry, PATHWISE_TELEMETRY) === true
}

/** The `_datadog` object of a job's metadata, if it holds one. */
function carrierOf(metadata: unknown): Record<string, unknown> | undefined {
  if (typeof metadata !== 'string' || metadata.length > MAX_METADATA || !metadata.includes(DATADOG_KEY)) return undefined
  try {
    const carrier = read(JSON.parse(metadata), DATADOG_KEY)
    return isRecord(carrier) ? (carrier as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/**
 * The metadata with `_datadog` holding `carrier`'s keys: the application telemetry's JSON object
 * with one more key, or `{"_datadog":{…}}` alone. Undefined for metadata that is no JSON object:
 * the application's own format, which its jobs carry alone (that telemetry goes on working).
 */
function withDatadog(inner: string | undefined, carrier: Record<string, unknown>): string | undefined {
  if (!inner) return JSON.stringify({ [DATADOG_KEY]: carrier })
  let metadata: unknown
  try {
    metadata = JSON.parse(inner)
  } catch {
    metadata = undefined
  }
  if (!isRecord(metadata) || Array.isArray(metadata)) return undefined
  const existing = read(metadata, DATADOG_KEY)
  ;(metadata as Record<string, unknown>)[DATADOG_KEY] = isRecord(existing) ? { ...existing, ...carrier } : carrier
  return JSON.stringify(metadata)
}

const LEFT_OUT: Record<Exclude<Carriage, 'carried'> | 'not json', string> = {
  omitted: 'the job asks for no telemetry context (telemetry.omitContext)',
  own: 'the job brings telemetry.metadata of its own, which BullMQ keeps instead',
  unreadable: "the job's telemetry options cannot be read",
  'not json': "the application's telemetry metadata is no JSON object",
}

/** Counts the jobs BullMQ adds without their context, per reason. */
function leftOut(dsm: unknown, queue: string, carriages: (Carriage | 'not json')[]): void {
  const counts = new Map<Exclude<Carriage, 'carried'> | 'not json', number>()
  for (const c of carriages) if (c !== 'carried') counts.set(c, (counts.get(c) ?? 0) + 1)
  for (const [why, count] of counts) contextsLeftOut(dsm, count, `BullMQ queue ${queue}`, LEFT_OUT[why])
}
