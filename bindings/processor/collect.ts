import type { Backlog } from './backlogs.js'
import type { DrainedBucket } from '../core/types.js'
import type { ExportBucket } from '../export/payload.js'

/**
 * What one flush sends: the core's drained points, with the edge tags of their nodes, and the
 * backlogs of the same buckets, merged per bucket in ascending order.
 */
export function collectBuckets(drained: DrainedBucket[], backlogs: Map<number, Backlog[]>, tagsOf: (node: number) => readonly string[]): ExportBucket[] {
  const byBucket = new Map<number, ExportBucket>()
  for (const { bucket, points } of drained) {
    byBucket.set(bucket, {
      bucket,
      backlogs: [],
      points: points.map((p) => ({
        edgeTags: tagsOf(p.node),
        hashHi: p.hashHi,
        hashLo: p.hashLo,
        parentHi: p.parentHi,
        parentLo: p.parentLo,
        pathwayLatency: p.pathwayLatency,
        edgeLatency: p.edgeLatency,
        payloadSize: p.payloadSize,
        timestampType: 'current' as const,
      })),
    })
  }
  for (const [bucket, list] of backlogs) {
    let b = byBucket.get(bucket)
    if (b === undefined) byBucket.set(bucket, (b = { bucket, points: [], backlogs: [] }))
    b.backlogs = list
  }
  return [...byBucket.values()].sort((a, b) => a.bucket - b.bucket)
}
