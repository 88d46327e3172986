/**
 * Case 2, consume: the header value as Kafka delivers it (a Buffer of base64 text) decoded, then
 * one consume checkpoint with it as the parent. 1,024 header values of one upstream pathway.
 */
import { decodePathwayContext } from '../../bindings/pathway/context.js'
import { decodeDdContext, ddProcessor } from '../dd-trace.js'
import { compare, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import { headerValues } from '../headers.js'
import { ENV, PAYLOAD_BYTES, SERVICE, consumeTags, pathwise } from '../subjects.js'

const POOL = 1024
const OPS = 1000

export function consume(s: Settings): Row[] {
  const headers = headerValues(POOL, 0x9a6ed7bf, 0xb001208e)
  const tags = consumeTags('bench-group', 'orders')

  const pathwiseBody = (core: 'wasm' | 'ts') => {
    const dsm = pathwise(core)
    const node = dsm.node(tags)!
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) dsm.setCheckpoint(node, decodePathwayContext(headers[i & (POOL - 1)]), PAYLOAD_BYTES)
    }
  }

  const ddBody = () => {
    const { processor } = ddProcessor(SERVICE, ENV)
    let i = 0
    return () => {
      for (let k = 0; k < OPS; k++, i++) processor.setCheckpoint(tags, null, decodeDdContext(headers[i & (POOL - 1)])!, PAYLOAD_BYTES)
    }
  }

  const figures = compare({ wasm: pathwiseBody('wasm'), ts: pathwiseBody('ts'), 'dd-trace': ddBody() }, OPS, s)
  return [{ case: 2, name: 'Consume: header decode + checkpoint', unit: 'ns/message', figures, ratios: timeRatios(figures) }]
}
