/**
 * Case 1, produce: one produce checkpoint and the header value written into the message's
 * headers, steady state. The parent is the context of a consumed message (as when a service
 * produces while handling one): 1,024 of them, one pathway at different times, so that the hash
 * caches are warm but every header value is new.
 */
import { PATHWAY_KEY, encodePathwayContext, decodePathwayContext, type PathwayContext } from '../../bindings/pathway/context.js'
import { decodeDdContext, ddProcessor, encodeDdContext, type DdContext } from '../dd-trace.js'
import { compare, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import { headerValues } from '../headers.js'
import { ENV, PAYLOAD_BYTES, SERVICE, consumeTags, pathwise, produceTags } from '../subjects.js'

const POOL = 1024
const OPS = 1000

export function produce(s: Settings): Row[] {
  const upstream = headerValues(POOL, 0x9a6ed7bf, 0xb001208e)
  const inTags = consumeTags('bench-group', 'orders')
  const outTags = produceTags('enriched')

  const pathwiseBody = (core: 'wasm' | 'ts') => {
    const dsm = pathwise(core)
    const inNode = dsm.node(inTags)!
    const outNode = dsm.node(outTags)!
    const parents: PathwayContext[] = upstream.map((h) => dsm.setCheckpoint(inNode, decodePathwayContext(h), PAYLOAD_BYTES)!)
    const headers: Record<string, unknown> = {}
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) {
        const ctx = dsm.setCheckpoint(outNode, parents[i & (POOL - 1)], PAYLOAD_BYTES)!
        headers[PATHWAY_KEY] = encodePathwayContext(ctx)
      }
    }
  }

  const ddBody = () => {
    const { processor } = ddProcessor(SERVICE, ENV)
    const parents: DdContext[] = upstream.map((h) => processor.setCheckpoint(inTags, null, decodeDdContext(h)!, PAYLOAD_BYTES))
    const headers: Record<string, unknown> = {}
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) {
        const ctx = processor.setCheckpoint(outTags, null, parents[i & (POOL - 1)], PAYLOAD_BYTES)
        headers[PATHWAY_KEY] = encodeDdContext(ctx)
      }
    }
  }

  const figures = compare({ wasm: pathwiseBody('wasm'), ts: pathwiseBody('ts'), 'dd-trace': ddBody() }, OPS, s)
  return [{ case: 1, name: 'Produce: checkpoint + header value', unit: 'ns/message', figures, ratios: timeRatios(figures) }]
}
