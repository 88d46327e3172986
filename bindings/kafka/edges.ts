/**
 * What a Kafka checkpoint is made of: its edge tags, prepared once per topic as a CheckpointNode,
 * and the payload size of a message: key + value + headers, as they travel.
 */
import { Buffer } from 'node:buffer'
import { PATHWAY_KEY } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import { isRecord, items, viewBytes } from '../common/input.js'

/** The header pathwise adds: its key and a 28-character value (20 context bytes) for any time between 2004 and 2112. */
export const PATHWAY_HEADER_BYTES = Buffer.byteLength(PATHWAY_KEY) + 28

/**
 * The nodes of one client per topic: `direction:out` for a producer, `direction:in` with the
 * group for a consumer. The cache starts over if the cluster id becomes known later.
 */
export class TopicNodes {
  private readonly nodes: TransportNodes<CheckpointNode | null>
  private clusterId: string | undefined

  constructor(dsm: DataStreams, group?: string) {
    this.nodes = new TransportNodes((topic) => dsm.node(edgeTags(topic, group, this.clusterId)), isLive)
  }

  get(topic: string, clusterId?: string): CheckpointNode | null {
    if (clusterId !== this.clusterId) {
      this.nodes.clear()
      this.clusterId = clusterId
    }
    return this.nodes.get(topic)
  }
}

export function edgeTags(topic: string, group: string | undefined, clusterId: string | undefined): string[] {
  const tags =
    group === undefined
      ? ['direction:out', `topic:${topic}`, 'type:kafka']
      : ['direction:in', `group:${group}`, `topic:${topic}`, 'type:kafka']
  if (clusterId) tags.push(`kafka_cluster_id:${clusterId}`)
  return tags
}

/**
 * Bytes of a key, value or header value: a string in UTF-8, a Buffer as is, a repeated header
 * value (an array of them, as many as pathwise walks) summed; 0 for anything else. One level deep:
 * clients take no nested arrays, and a nested walk would multiply the bound.
 */
export function bytesOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value)
  if (ArrayBuffer.isView(value)) return viewBytes(value)
  const values = items(value)
  if (values === undefined) return 0
  let n = 0
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v === 'string') n += Buffer.byteLength(v)
    else if (ArrayBuffer.isView(v)) n += viewBytes(v)
  }
  return n
}

/**
 * key + value + headers of a KafkaJS-style message, whose headers are an object (a repeated
 * header: an array of values); 0 for a message that cannot be read (a Proxy, a throwing getter).
 * The fields are read directly under one guard: this runs for every message, and `read` per
 * field would cost a third of the checkpoint.
 */
export function messageSize(message: unknown): number {
  try {
    const m = message as { key?: unknown; value?: unknown; headers?: unknown }
    return bytesOf(m.key) + bytesOf(m.value) + headerObjectSize(m.headers)
  } catch {
    return 0
  }
}

function headerObjectSize(headers: unknown): number {
  if (headers === null || typeof headers !== 'object' || ArrayBuffer.isView(headers)) return 0
  let n = 0
  const h = headers as Record<string, unknown>
  for (const key of Object.keys(h)) {
    const value = h[key]
    if (value === undefined || value === null) continue
    // A repeated header travels as one record per value, each with its key; one too long to walk counts as none (as bytesOf).
    const repeated = Array.isArray(value) ? (items(value)?.length ?? 0) : 1
    n += Buffer.byteLength(key) * repeated + bytesOf(value)
  }
  return n
}

/** Headers of the node-rdkafka-style API: an array of one-key objects, one per record header; 0 for headers that cannot be read. */
export function headerListSize(headers: unknown): number {
  const list = items(headers)
  if (list === undefined) return 0
  try {
    let n = 0
    for (let i = 0; i < list.length; i++) {
      const header = list[i] as Record<string, unknown>
      // Binary data or an array is no header: its every index would be a key (a million for a MB).
      if (!isRecord(header)) continue
      for (const key of Object.keys(header)) n += Buffer.byteLength(key) + bytesOf(header[key])
    }
    return n
  } catch {
    return 0
  }
}
