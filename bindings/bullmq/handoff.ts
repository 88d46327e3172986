/**
 * What BullMQ's public methods hand pathwise's telemetry, which BullMQ's telemetry interface does
 * not show it: the jobs a call adds (their payload sizes, and what BullMQ will do with a context
 * given for them) and the job a Worker processes. Queue.add and addBulk reach getMetadata, and
 * Worker.processJob its CONSUMER span, synchronously, before their first await: they hand over in
 * a variable (`handOver`). A flow's nodes are added after awaits, each asking for its metadata:
 * FlowProducer.add hands them over in an AsyncLocalStorage (`runFlow`), per queue in the order
 * BullMQ adds them (level by level). The telemetry writes back what it recorded, so that a call
 * that finally fails is counted as failed sends.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { CheckpointNode } from '../api/data-streams.js'
import { read } from '../common/input.js'
import { jsonSize } from './data-size.js'

/**
 * What BullMQ does with the context pathwise gives a job, by its own rules on the job's options:
 * carries it; carries none (`telemetry.omitContext`); keeps the job's own `telemetry.metadata`
 * instead (addBulk and flows); or could not read those options, which it reads only when given a
 * context: then none is given, so that the call goes as it goes without pathwise.
 */
export type Carriage = 'carried' | 'omitted' | 'own' | 'unreadable'

export interface AddedJob {
  /** About the JSON bytes of its data (NOT_JSON: BullMQ will refuse the add). */
  size: number
  carriage: Carriage
}

/** The produce checkpoints a call made, at `node`. */
export interface Recorded {
  node: CheckpointNode
  count: number
}

/** Queue.add (one job) or Queue.addBulk (each). */
export interface Adding {
  jobs: AddedJob[]
  recorded: Recorded[]
}

/** A flow's nodes, by queue in the order BullMQ asks for their metadata. */
export interface FlowAdding {
  byQueue: Map<string, AddedJob[]>
  recorded: Recorded[]
}

export type HandedOver = Adding | { job: object }

let handed: HandedOver | undefined

export function handOver<T>(what: HandedOver, fn: () => T): T {
  const previous = handed
  handed = what
  try {
    return fn()
  } finally {
    handed = previous
  }
}

/** What the call running now handed over, once: the next telemetry call on the way finds nothing. */
export function take(): HandedOver | undefined {
  const what = handed
  handed = undefined
  return what
}

const flows = new AsyncLocalStorage<FlowAdding>()

export function runFlow<T>(flow: FlowAdding, fn: () => T): T {
  return flows.run(flow, fn)
}

export function currentFlow(): FlowAdding | undefined {
  return flows.getStore()
}

/** A job as a call hands it over: its data's size and what BullMQ will do with a context, from its options (`bulk`: addBulk and flows, where its own metadata wins). */
export function addedJob(data: unknown, opts: unknown, bulk: boolean): AddedJob {
  return { size: jsonSize(data), carriage: carriage(opts, bulk) }
}

function carriage(opts: unknown, bulk: boolean): Carriage {
  try {
    const telemetry = (opts as { telemetry?: { omitContext?: unknown; metadata?: unknown } } | null | undefined)?.telemetry
    const omitted = telemetry?.omitContext
    // Read even when omitContext is set: BullMQ's addBulk and flows read it then too, once given a context.
    const own = telemetry?.metadata
    if (omitted) return 'omitted'
    return bulk && own ? 'own' : 'carried'
  } catch {
    return 'unreadable'
  }
}

/** addBulk's and flows' jobs: `{ data, opts }`, read once each. */
export function addedJobOf(job: unknown): AddedJob {
  return addedJob(read(job, 'data'), read(job, 'opts'), true)
}
