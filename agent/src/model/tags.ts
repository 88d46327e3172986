/**
 * Edge tags and backlog tags are `key:value` strings (wire format, sections 1 and 3). Tracers
 * write them in different orders (dd-trace-js sorts backlog tags by key, Python and Go do not),
 * so everything here reads them as a map, never by position.
 */

/** `key:value` strings as a map; the value is everything after the first colon. A tag without a colon is ignored. */
export function tagMap(tags: readonly string[]): Map<string, string> {
  const map = new Map<string, string>()
  for (const tag of tags) {
    const colon = tag.indexOf(':')
    if (colon > 0) map.set(tag.slice(0, colon), tag.slice(colon + 1))
  }
  return map
}

/** What a stats point's edge tags say about the hop. */
export interface EdgeInfo {
  direction?: 'in' | 'out'
  /** kafka, sqs, kinesis, ... */
  type?: string
  /** The topic, queue or stream name (RabbitMQ producers name an exchange instead). */
  topic?: string
  /** The Kafka consumer group. */
  group?: string
  /** The exchange a RabbitMQ publish names where it names no queue (an `exchange` tag and no `topic` tag): drawn as an exchange. */
  exchange?: string
}

export function edgeInfo(tags: readonly string[]): EdgeInfo {
  const map = tagMap(tags)
  const direction = map.get('direction')
  return {
    direction: direction === 'in' || direction === 'out' ? direction : undefined,
    type: map.get('type') || undefined,
    topic: map.get('topic') || map.get('exchange') || undefined,
    group: map.get('group') || undefined,
    exchange: map.get('topic') ? undefined : map.get('exchange') || undefined,
  }
}

/** What tracers call a queue of each transport, for labels. */
export function queueRole(type: string): string {
  switch (type) {
    case 'kafka':
      return 'topic'
    case 'kinesis':
      return 'stream'
    case 'sqs':
    case 'rabbitmq':
    case 'bullmq':
      return 'queue'
    case 'nats':
      return 'subject'
    default:
      return type
  }
}
