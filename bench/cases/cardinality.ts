/**
 * Case 4, high cardinality: consume checkpoints (header decode included) over 200 distinct
 * edge-tag sets, 20 topics × 10 consumer groups, round robin; each topic has its own upstream
 * pathway. Every implementation is handed the edge tags as an array per message, so pathwise
 * finds its node by the tags here (the adapters' prepared nodes are case 2).
 */
import { decodePathwayContext } from '../../bindings/pathway/context.js'
import { decodeDdContext, ddProcessor } from '../dd-trace.js'
import { compare, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import { headerValues } from '../headers.js'
import { ENV, PAYLOAD_BYTES, SERVICE, consumeTags, pathwise, words } from '../subjects.js'

const TOPICS = 20
const GROUPS = 10
const SETS = TOPICS * GROUPS
const VARIANTS = 16 // header values per topic
const OPS = 1000

export function cardinality(s: Settings): Row[] {
  const next = words(4)
  const headers = Array.from({ length: TOPICS }, () => headerValues(VARIANTS, next(), next()))
  // message k: tag set k mod 200, the topic's header variant changing every 256 messages
  const tags = Array.from({ length: SETS }, (_, k) => consumeTags(`group-${Math.floor(k / TOPICS)}`, `topic-${k % TOPICS}`))
  const header = (k: number) => headers[k % TOPICS][(k >> 8) & (VARIANTS - 1)]

  const pathwiseBody = (core: 'wasm' | 'ts') => {
    const dsm = pathwise(core)
    let k = 0
    return () => {
      for (let n = 0; n < OPS; n++, k++) dsm.setCheckpoint(tags[k % SETS], decodePathwayContext(header(k)), PAYLOAD_BYTES)
    }
  }

  const ddBody = () => {
    const { processor } = ddProcessor(SERVICE, ENV)
    let k = 0
    return () => {
      for (let n = 0; n < OPS; n++, k++) processor.setCheckpoint(tags[k % SETS], null, decodeDdContext(header(k))!, PAYLOAD_BYTES)
    }
  }

  const figures = compare({ wasm: pathwiseBody('wasm'), ts: pathwiseBody('ts'), 'dd-trace': ddBody() }, OPS, s)
  return [{ case: 4, name: 'High cardinality: 200 edge-tag sets', unit: 'ns/message', figures, ratios: timeRatios(figures) }]
}
