/**
 * Case 3, batch consume: the 1,000 messages of one fetched batch (one topic, one upstream
 * pathway, produced at different times). pathwise takes the batch as its consumers' batch path
 * does (`checkpointHeaders`): the header values decoded straight into the core's batch buffer,
 * one core call, and the context of the first message made (the handler's; the others are made
 * when asked); dd-trace decodes and checkpoints message by message, as its batch consumer plugin
 * does.
 */
import { checkpointHeaders } from '../../bindings/instrument/batch-checkpoints.js'
import { decodeDdContext, ddProcessor } from '../dd-trace.js'
import { compare, type Settings } from '../harness.js'
import { timeRatios, type Row } from '../results.js'
import { headerValues } from '../headers.js'
import { ENV, PAYLOAD_BYTES, SERVICE, consumeTags, pathwise } from '../subjects.js'

const BATCH = 1000

export function batchConsume(s: Settings): Row[] {
  const headers = headerValues(BATCH, 0x9a6ed7bf, 0xb001208e)
  const sizes = new Float64Array(BATCH).fill(PAYLOAD_BYTES)
  const tags = consumeTags('bench-group', 'orders')

  const pathwiseBody = (core: 'wasm' | 'ts') => {
    const dsm = pathwise(core)
    const node = dsm.node(tags)!
    return () => {
      checkpointHeaders(dsm, node, headers, sizes).get(0)
    }
  }

  const ddBody = () => {
    const { processor } = ddProcessor(SERVICE, ENV)
    return () => {
      for (let i = 0; i < BATCH; i++) processor.setCheckpoint(tags, null, decodeDdContext(headers[i])!, PAYLOAD_BYTES)
    }
  }

  const figures = compare({ wasm: pathwiseBody('wasm'), ts: pathwiseBody('ts'), 'dd-trace': ddBody() }, BATCH, s)
  return [{ case: 3, name: 'Batch consume: 1,000 messages', unit: 'ns/message', figures, ratios: timeRatios(figures) }]
}
