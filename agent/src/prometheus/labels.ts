/**
 * What tracers name (services, envs, topics, groups, checkpoints, any tag) as Prometheus label
 * values, and back, exactly: the fleet view must draw the same names as the agent.
 *
 * Prometheus keeps label values as UTF-8, and an empty value as no label at all. A JS string with a
 * lone surrogate (msgpack strings are not checked for it) would come back with U+FFFD in its place,
 * merging names that differ only there; so a lone surrogate is written as U+FFFF and its four hex
 * digits, and so is a U+FFFF (a noncharacter, which no real name holds), and read back the same
 * way. Every other string is written as it is. Empty values are read back as empty.
 *
 * A stats point series' labels: `service`, `env`, `pathway_hash`, `parent_hash`, then `direction`,
 * `type`, `topic`, `group` and `kafka_cluster_id` from its edge tags, and `edge_tags` (a JSON array)
 * with the tags not written as these (none, usually): from the labels the agent's edge tags come
 * back, so that two series of the agent are two label sets.
 */

const MARK = '\uffff'
const ODD = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\uffff/g
const MARKED = /\uffff([0-9a-f]{4})/g

/** A name as a label value. */
export function toLabel(name: string): string {
  return name.replace(ODD, (c) => MARK + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** A label value as the name it was written from. */
export function fromLabel(value: string | undefined): string {
  if (value === undefined) return ''
  return value.includes(MARK) ? value.replace(MARKED, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : value
}

/** Edge tag keys written as labels of their own, in this order. */
const TAG_LABELS = ['direction', 'type', 'topic', 'group', 'kafka_cluster_id'] as const

/** The labels of a stats point series, in order. */
export const POINT_LABELS = ['service', 'env', 'pathway_hash', 'parent_hash', ...TAG_LABELS, 'edge_tags'] as const
export type PointLabel = (typeof POINT_LABELS)[number]

const hex = (hash: bigint): string => hash.toString(16).padStart(16, '0')

/** A stats point series' labels (values as written, empty ones included), in POINT_LABELS order. */
export function pointLabels(service: string, env: string, hash: bigint, parent: bigint, edgeTags: readonly string[]): Array<[PointLabel, string]> {
  const named = new Map<string, string>()
  const rest: string[] = []
  for (const tag of [...edgeTags].sort()) {
    const colon = tag.indexOf(':')
    const key = tag.slice(0, colon)
    const value = tag.slice(colon + 1)
    if (colon > 0 && value !== '' && (TAG_LABELS as readonly string[]).includes(key) && !named.has(key)) named.set(key, value)
    else rest.push(tag)
  }
  return [
    ['service', toLabel(service)],
    ['env', toLabel(env)],
    ['pathway_hash', hex(hash)],
    ['parent_hash', hex(parent)],
    ...TAG_LABELS.map((k): [PointLabel, string] => [k, toLabel(named.get(k) ?? '')]),
    ['edge_tags', rest.length > 0 ? toLabel(JSON.stringify(rest)) : ''],
  ]
}

export interface PointSeries {
  service: string
  env: string
  hash: bigint
  parent: bigint
  edgeTags: string[]
}

const HEX = /^[0-9a-f]{16}$/

/** The series a label set was written from, or null when the labels are not a stats point series'. */
export function pointSeries(labels: Record<string, string>): PointSeries | null {
  const { pathway_hash: h, parent_hash: p } = labels
  if (!h || !p || !HEX.test(h) || !HEX.test(p)) return null
  const edgeTags: string[] = []
  for (const k of TAG_LABELS) if (labels[k]) edgeTags.push(`${k}:${fromLabel(labels[k])}`)
  if (labels.edge_tags) {
    let rest: unknown
    try {
      rest = JSON.parse(fromLabel(labels.edge_tags))
    } catch {
      return null
    }
    if (!Array.isArray(rest) || !rest.every((t) => typeof t === 'string')) return null
    edgeTags.push(...rest)
  }
  return { service: fromLabel(labels.service), env: fromLabel(labels.env), hash: BigInt(`0x${h}`), parent: BigInt(`0x${p}`), edgeTags: edgeTags.sort() }
}

/** The key of a stats point series among answers: its labels, whatever else Prometheus adds (instance, job). */
export function pointKey(labels: Record<string, string>): string {
  let key = ''
  for (const l of POINT_LABELS) key += `${labels[l] ?? ''}\u0000`
  return key
}
