import type { Store } from '../model/store.js'
import type { NodeView } from './topology.js'

/**
 * What BullMQ users watch on a queue: its jobs waiting, delayed, active and failed, as pathwise's
 * BullMQ instrumentation samples them (`queue_depth` backlogs). Each queue node whose depth is
 * reported gets the latest count of each state (the highest of its bucket, where several processes
 * sample the same queue); its waiting jobs are also its consume edges' lag (views/lag.ts queueLag).
 */
export function withQueueJobs(store: Store, nodes: NodeView[]): void {
  const jobs = new Map<string, Record<string, number>>()
  for (const s of store.backlogs()) {
    if (s.kind !== 'queue_depth' || s.queueType === undefined || s.state === undefined) continue
    const id = `${s.queueType}:${s.topic}`
    let counts = jobs.get(id)
    if (!counts) jobs.set(id, (counts = {}))
    let latest = -Infinity
    for (const [start, value] of s.values) {
      if (start > latest) {
        latest = start
        counts[s.state] = value
      }
    }
  }
  for (const node of nodes) {
    const counts = node.kind === 'queue' ? jobs.get(node.id) : undefined
    if (counts) node.jobs = counts
  }
}
