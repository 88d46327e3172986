/**
 * BullMQ 6: `instrumentBullmq(bullmq, dsm)` and the automatic mode give every Queue, Worker,
 * FlowProducer and job scheduler made from then on pathwise's telemetry (telemetry.ts), composed
 * with the `telemetry` the application passes, exactly as if the application had passed it: the
 * `opts` a Queue or Worker keeps (and a FlowProducer's `telemetry`) is caught as the constructor
 * stores it, by an accessor on the prototype that then leaves a plain property on the instance.
 * Everything else goes through BullMQ's telemetry interface. What that interface does not show,
 * public methods hand over on their way in: the job data of Queue.add and Queue.addBulk and the job
 * Worker.processJob runs (payload sizes), and a flow whose nodes lack `opts` goes to
 * FlowProducer.add as a copy in which each has one (BullMQ stores its telemetry metadata only in a
 * node with `opts`). Queues and Workers are also sampled for their backlogs (job-counts.ts).
 */
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { classPrototype, isRecord, items, read } from '../common/input.js'
import { JobCountSampler } from './job-counts.js'
import { addedJob, addedJobOf, handOver, runFlow, type Adding, type AddedJob, type FlowAdding, type Recorded } from './handoff.js'
import { sendsFailed } from '../instrument/send-outcomes.js'
import { PathwiseTelemetry, fail, log, isPathwiseTelemetry, queueNodes, type BullmqJourney } from './telemetry.js'

// BullMQ's objects: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any
type Class = abstract new (...args: any[]) => object

/**
 * The prototypes instrumented, process-wide (a global symbol): when the explicit function and the
 * automatic mode (the register bundle's copy of pathwise and the application's) meet on one
 * module, the second stands aside rather than compose telemetries twice.
 */
const CLAIMED = Symbol.for('pathwise.bullmq.instrumented')
const claimed = ((globalThis as Record<symbol, unknown>)[CLAIMED] ??= new WeakSet<object>()) as WeakSet<object>

/**
 * Instruments the BullMQ module `bullmq` (what `import * as bullmq from 'bullmq'` or
 * `require('bullmq')` gives): its Queues, Workers and FlowProducers made from now on. Returns the
 * undo: the prototypes are restored, and the objects made meanwhile pass everything through to
 * the application's own telemetry. With DSM disabled nothing is changed.
 */
export function instrumentBullmq(bullmq: object, dsm: DataStreams): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    const base = classPrototype(bullmq, 'QueueBase')
    if (base === undefined || claimed.has(base)) return () => {}
    claimed.add(base)
    const undos: (() => void)[] = [() => claimed.delete(base)]
    try {
      instrumentClasses(bullmq, base, { dsm, active, nodes: queueNodes(dsm) }, undos)
    } catch (err) {
      // Not BullMQ as pathwise knows it: whatever was patched is undone, and the module goes on as it came.
      fail('instrument', err)
      undoAll(undos)()
      return () => {}
    }
    return undoAll(undos)
  })
}

/** Patches the classes, pushing each patch's undo as it is made (so that a failure halfway undoes what was done). */
function instrumentClasses(bullmq: object, base: Record<string, any>, journey: BullmqJourney, undos: (() => void)[]): void {
  const { dsm, active } = journey
  const sampler = new JobCountSampler(dsm)
  const classes = { Queue: classOf(bullmq, 'Queue'), Worker: classOf(bullmq, 'Worker'), JobScheduler: classOf(bullmq, 'JobScheduler') }
  const telemetryFor = (instance: object, given: unknown): unknown => {
    const scheduled = isInstance(instance, classes.JobScheduler)
    if (isPathwiseTelemetry(given)) return given.scheduled === scheduled ? given : new PathwiseTelemetry(journey, given.inner, scheduled)
    return new PathwiseTelemetry(journey, given, scheduled)
  }
  undos.push(
    () => sampler.stop(),
    catchOnConstruction(base, 'opts', active, (instance, opts) => {
      if (!isRecord(opts)) return opts
      if (isInstance(instance, classes.Queue) || isInstance(instance, classes.Worker)) sampler.register(read(instance, 'name'), instance)
      return withTelemetry(opts, telemetryFor(instance, read(opts, 'telemetry')))
    }),
  )
  const queue = classPrototype(bullmq, 'Queue')
  if (queue !== undefined) {
    const adding = (add: AnyFn, jobsOf: (args: unknown[]) => AddedJob[]) =>
      function (this: object, ...args: unknown[]) {
        if (!active()) return add.apply(this, args)
        const call: Adding = { jobs: jobsOf(args), recorded: [] }
        return failedSends(dsm, call.recorded, handOver(call, () => add.apply(this, args)))
      }
    undos.push(
      wrapMethod(queue, 'add', (add: AnyFn) => adding(add, (args) => [addedJob(args[1], args[2], false)])),
      wrapMethod(queue, 'addBulk', (addBulk: AnyFn) => adding(addBulk, (args) => (items(args[0]) ?? []).map(addedJobOf))),
    )
  }
  const worker = classPrototype(bullmq, 'Worker')
  if (worker !== undefined) {
    undos.push(
      wrapMethod(worker, 'processJob', (processJob: AnyFn) =>
        function (this: object, ...args: unknown[]) {
          const job = args[0]
          return active() && isRecord(job) ? handOver({ job }, () => processJob.apply(this, args)) : processJob.apply(this, args)
        },
      ),
    )
  }
  const flowProducer = classPrototype(bullmq, 'FlowProducer')
  if (flowProducer !== undefined) instrumentFlows(flowProducer, dsm, active, telemetryFor, undos)
}

/** FlowProducer: its `telemetry` (set by the constructor only when the application gives one), and its flows' nodes given `opts`. */
function instrumentFlows(
  flowProducer: Record<string, any>,
  dsm: DataStreams,
  active: () => boolean,
  telemetryFor: (instance: object, given: unknown) => unknown,
  undos: (() => void)[],
): void {
  const addFlows = (add: AnyFn, toFlows: (args: unknown[]) => { args: unknown[]; flow: FlowAdding } | undefined) =>
    function (this: object, ...args: unknown[]) {
      const copy = active() ? toFlows(args) : undefined
      return copy === undefined ? add.apply(this, args) : failedSends(dsm, copy.flow.recorded, runFlow(copy.flow, () => add.apply(this, copy.args)))
    }
  undos.push(catchOnConstruction(flowProducer, 'telemetry', active, (instance, given) => telemetryFor(instance, given), (instance) => telemetryFor(instance, undefined)))
  undos.push(
    wrapMethod(flowProducer, 'add', (add: AnyFn) =>
      addFlows(add, (args) => {
        const flows = withOpts([args[0]])
        return { args: [flows.copies[0], ...args.slice(1)], flow: flows.flow }
      }),
    ),
    wrapMethod(flowProducer, 'addBulk', (addBulk: AnyFn) =>
      addFlows(addBulk, (args) => {
        const list = items(args[0])
        const flows = list === undefined ? undefined : withOpts(list)
        return flows === undefined ? undefined : { args: [flows.copies, ...args.slice(1)], flow: flows.flow }
      }),
    ),
  )
}

/**
 * Copies of flows in which every node has `opts` (the application's objects stay as they are),
 * and their nodes' jobs per queue in the order BullMQ adds the nodes: level by level, over every
 * flow of the call. When a node cannot be copied (a getter that throws) the flows go as they came,
 * their jobs still handed over: BullMQ must not be given a context for a job whose telemetry
 * options it cannot read. Flows that cannot be walked (a node met twice: a cycle) hand over no
 * job, and none of their nodes gets a context.
 */
function withOpts(flows: readonly unknown[]): { copies: readonly unknown[]; flow: FlowAdding } {
  let copies: readonly unknown[]
  try {
    copies = flows.map(copyNode)
  } catch (err) {
    fail('flow', err)
    copies = flows
  }
  const flow: FlowAdding = { byQueue: new Map(), recorded: [] }
  try {
    const seen = new Set<object>()
    for (let level = copies; level.length > 0; ) {
      const next: unknown[] = []
      for (let i = 0; i < level.length; i++) {
        const node = level[i]
        if (!isRecord(node)) continue
        if (seen.has(node)) throw new Error('a flow node met twice (a cycle)')
        seen.add(node)
        const queue = read(node, 'queueName')
        if (typeof queue === 'string') {
          let list = flow.byQueue.get(queue)
          if (list === undefined) flow.byQueue.set(queue, (list = []))
          list.push(addedJobOf(node))
        }
        const children = items(read(node, 'children')) ?? []
        for (let j = 0; j < children.length; j++) next.push(children[j])
      }
      level = next
    }
  } catch (err) {
    fail('flow', err)
    flow.byQueue.clear()
  }
  return { copies, flow }
}

/** A node's copy (of its own properties, on its prototype) with `opts`, and copies of its children. */
function copyNode(node: unknown): unknown {
  if (!isRecord(node)) return node
  const copy = Object.assign(Object.create(Object.getPrototypeOf(node)), node) as Record<string, unknown>
  if (copy.opts === undefined || copy.opts === null) copy.opts = {}
  const children = items(copy.children)
  if (children !== undefined) copy.children = children.map(copyNode)
  return copy
}

/** The call's promise as it comes, its failure also counting the produce checkpoints it made as failed sends. */
function failedSends<T>(dsm: DataStreams, recorded: Recorded[], result: T): T {
  if (!(result instanceof Promise)) return result
  return result.then(undefined, (err: unknown) => {
    for (const { node, count } of recorded) sendsFailed(dsm, node, count)
    throw err
  }) as T
}

/** BullMQ's own copy of the options with the telemetry in it (a copy of that where it takes no property). */
function withTelemetry(opts: object, telemetry: unknown): object {
  if (read(opts, 'telemetry') === telemetry) return opts
  try {
    ;(opts as Record<string, unknown>).telemetry = telemetry
    return opts
  } catch {
    return { ...opts, telemetry }
  }
}

/**
 * Catches what a constructor stores in `this[key]`: an accessor on the prototype whose setter
 * stores `adopt(instance, value)` as the instance's own plain property (later reads and writes no
 * longer reach the accessor). `initial` is what the getter gives (and stores in) an instance that stored nothing.
 * Left alone where the prototype has such a property already; the undo removes the accessor.
 */
function catchOnConstruction(
  prototype: Record<string, any>,
  key: string,
  active: () => boolean,
  adopt: (instance: object, value: unknown) => unknown,
  initial?: (instance: object) => unknown,
): () => void {
  if (Object.getOwnPropertyDescriptor(prototype, key) !== undefined) {
    log.warnOnce(`bullmq:${key}`, `bullmq: ${key} is already defined on the prototype: left alone, its objects are not instrumented`)
    return () => {}
  }
  // Where an instance takes no property of its own (a Proxy refusing it), the accessor keeps the value.
  const kept = new WeakMap<object, unknown>()
  const store = (instance: object, value: unknown): unknown => {
    try {
      Object.defineProperty(instance, key, { value, writable: true, enumerable: true, configurable: true })
    } catch {
      kept.set(instance, value)
    }
    return value
  }
  const accessor: PropertyDescriptor = {
    configurable: true,
    get(this: object) {
      if (kept.has(this)) return kept.get(this)
      return initial !== undefined && active() ? store(this, safely(() => initial(this), undefined)) : undefined
    },
    set(this: object, value: unknown) {
      store(this, active() ? safely(() => adopt(this, value), value) : value)
    },
  }
  Object.defineProperty(prototype, key, accessor)
  return () => {
    if (Object.getOwnPropertyDescriptor(prototype, key)?.get === accessor.get) delete prototype[key]
  }
}

function safely<T>(fn: () => T, otherwise: T): T {
  try {
    return fn()
  } catch (err) {
    fail('telemetry', err)
    return otherwise
  }
}

function classOf(exports: unknown, name: string): Class | undefined {
  const value = read(exports, name)
  return typeof value === 'function' ? (value as Class) : undefined
}

function isInstance(value: object, Class: Class | undefined): boolean {
  try {
    return Class !== undefined && value instanceof Class
  } catch {
    return false
  }
}

/** The automatic mode: the `bullmq` module's classes, when the application loads it. */
export const bullmqInstrumentation: Instrumentation = {
  module: 'bullmq',
  supportedVersions: '>=6.0.0 <7',
  patch: (exports, dsm) => instrumentBullmq(exports as object, dsm),
}
