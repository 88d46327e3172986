/**
 * A consumed batch's checkpoints by its messages' header values, for every transport: the
 * processor's one pass (`checkpointHeaders`: headers decoded straight into the core's batch
 * buffer, one core call, contexts made when asked) when the DataStreams is this copy's; for any
 * other (another copy of pathwise, another implementation) the public `setCheckpointBatch`, each
 * value decoded first.
 */
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { asPathwayContext, decodePathwayContext, type PathwayContext } from '../pathway/context.js'
import { contextList, type BatchContexts } from '../processor/batch-contexts.js'
import { DataStreamsProcessor } from '../processor/processor.js'

export { contextList, type BatchContexts }

/**
 * `values[i]`: message i's header value (the base64 text, or its bytes), a parent context read
 * elsewhere, or anything else for none; `sizes[i]`: its bytes.
 */
export function checkpointHeaders(dsm: DataStreams, node: CheckpointNode, values: readonly unknown[], sizes: ArrayLike<number>): BatchContexts {
  if (isProcessor(dsm)) return dsm.checkpointHeaders(node, values, sizes)
  const parents = values.map(parentOf)
  const ctxs = dsm.setCheckpointBatch(node, parents, sizes)
  return contextList(ctxs)
}

function isProcessor(dsm: DataStreams): dsm is DataStreamsProcessor {
  try {
    return dsm instanceof DataStreamsProcessor
  } catch {
    return false // a Proxy whose getPrototypeOf throws
  }
}

function parentOf(value: unknown): PathwayContext | null {
  return typeof value === 'string' || value instanceof Uint8Array ? decodePathwayContext(value) : asPathwayContext(value)
}
