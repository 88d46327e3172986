/**
 * What a RabbitMQ checkpoint is made of: its edge tags, as dd-trace-js 6.21 writes them for amqplib
 * and rhea, prepared once per exchange, queue or address as CheckpointNodes; and the bytes of a
 * message as dd-trace counts them (body + headers or properties).
 */
import { Buffer } from 'node:buffer'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import { PATHWAY_KEY } from '../pathway/context.js'

export const TYPE = 'rabbitmq'

/** What pathwise adds to a message: its key and a 28-character value (20 context bytes) for any time between 2004 and 2112. */
export const PATHWAY_ENTRY_BYTES = Buffer.byteLength(PATHWAY_KEY) + 28

/**
 * amqplib's publishes of one client: `topic:<routing key>` to the default exchange (''), else
 * `exchange:<name>`, then `has_routing_key`. One node per queue or per exchange, whatever
 * the routing keys used on a named exchange (they are not in the tags).
 */
export class PublishNodes {
  private readonly nodes: TransportNodes<CheckpointNode | null>

  constructor(dsm: DataStreams) {
    this.nodes = new TransportNodes((key) => dsm.node(publishTags(key)), isLive)
  }

  get(exchange: string, routingKey: string | undefined): CheckpointNode | null {
    if (routingKey === undefined) return this.nodes.get(`n${exchange}`)
    return this.nodes.get(exchange === '' ? `q${routingKey}` : `x${exchange}`)
  }
}

function publishTags(key: string): string[] {
  const name = key.slice(1)
  const target = key[0] === 'q' ? `topic:${name}` : `exchange:${name}`
  return ['direction:out', target, `has_routing_key:${key[0] !== 'n'}`, `type:${TYPE}`]
}

/** Consumes (amqplib: the queue; rhea: the source address): `direction:in`, `topic:<name>`. */
export function consumeNodes(dsm: DataStreams): TransportNodes<CheckpointNode | null> {
  return new TransportNodes((name) => dsm.node(['direction:in', `topic:${name}`, `type:${TYPE}`]), isLive)
}

/** rhea sends: `exchange:<target address>`, as dd-trace names every AMQP 1.0 target. */
export function sendNodes(dsm: DataStreams): TransportNodes<CheckpointNode | null> {
  return new TransportNodes((address) => dsm.node(['direction:out', `exchange:${address}`, `type:${TYPE}`]), isLive)
}

/** Most parts (keys, items) one size walks; nested values deeper than MAX_DEPTH count 0. */
const MAX_PARTS = 1000
const MAX_DEPTH = 4

/**
 * Bytes of a body, header table or property map as dd-trace counts them: a string in UTF-8, binary
 * data as is, an array by its items, an object by its keys and values (inherited enumerable ones
 * too: amqplib's publish headers inherit the caller's); numbers and the rest 0. 0 for what
 * cannot be read (a Proxy, a throwing getter).
 */
export function bytesOf(value: unknown): number {
  try {
    return walk(value, 0, { parts: MAX_PARTS })
  } catch {
    return 0
  }
}

function walk(value: unknown, depth: number, budget: { parts: number }): number {
  if (typeof value === 'string') return Buffer.byteLength(value)
  if (value === null || typeof value !== 'object') return 0
  if (ArrayBuffer.isView(value)) return value.byteLength
  if (value instanceof ArrayBuffer) return value.byteLength
  if (depth >= MAX_DEPTH || (!Array.isArray(value) && !recordChain(value))) return 0
  let n = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && budget.parts-- > 0; i++) n += walk(value[i], depth + 1, budget)
    return n
  }
  for (const key in value) {
    if (budget.parts-- <= 0) break
    const v = (value as Record<string, unknown>)[key]
    if (typeof v !== 'function') n += Buffer.byteLength(key) + walk(v, depth + 1, budget)
  }
  return n
}

/** Prototype levels looked at by recordChain. */
const MAX_CHAIN = 8

/**
 * Whether an object and what it inherits from (at most MAX_CHAIN levels) are records, no binary
 * data or array: a table inheriting a buffer (amqplib's `headers: buffer`) has its every index as
 * a key, too many to walk. Throws as a Proxy's trap does.
 */
export function recordChain(value: object): boolean {
  let level: object | null = value
  for (let depth = 0; level !== null; depth++, level = Object.getPrototypeOf(level) as object | null) {
    if (depth > MAX_CHAIN || ArrayBuffer.isView(level) || Array.isArray(level)) return false
  }
  return true
}
