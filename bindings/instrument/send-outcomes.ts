/**
 * What a transport wrapper reports about a send besides its checkpoints (api/send-outcomes.ts):
 * contexts left out because of a size limit (counted, and said once per destination) and sends
 * that finally failed (counted, and sent to the Agent). Never throws.
 */
import type { CheckpointNode } from '../api/data-streams.js'
import { SEND_OUTCOMES, type SendOutcomes } from '../api/send-outcomes.js'
import { createLogger } from '../common/logger.js'
import { read } from '../common/input.js'

const log = createLogger(false)

/** Destinations warned about per reason; past it one last line says the rest are counted silently. */
const MAX_WARNED_DESTINATIONS = 100
const warned = new Map<string, Set<string>>()

function outcomesOf(dsm: unknown): SendOutcomes | undefined {
  const outcomes = read(dsm, SEND_OUTCOMES)
  return outcomes !== null && typeof outcomes === 'object' ? (outcomes as SendOutcomes) : undefined
}

/**
 * `count` messages to `destination` (e.g. "SQS queue orders") go without the pathway context:
 * counted in `dsm.stats.contextsLeftOut`, and `why` (how the limit was met) said once per destination.
 */
export function contextsLeftOut(dsm: unknown, count: number, destination: string, why: string): void {
  try {
    outcomesOf(dsm)?.contextsLeftOut(count)
    let destinations = warned.get(why)
    if (destinations === undefined) warned.set(why, (destinations = new Set()))
    if (destinations.has(destination) || destinations.size > MAX_WARNED_DESTINATIONS) return
    destinations.add(destination)
    if (destinations.size > MAX_WARNED_DESTINATIONS) {
      log.warn(`more destinations ${why}: no more warnings of this kind (dsm.stats.contextsLeftOut counts them all)`)
      return
    }
    log.warn(
      `${destination}: ${why}, so the message was sent without its pathway context (its consumers start a new pathway). ` +
        'Counted in dsm.stats.contextsLeftOut; said once per destination.',
    )
  } catch {
    // Reporting never stands in a send's way.
  }
}

/** `count` messages checkpointed at `node` were not sent after all: counted in `dsm.stats.failedSends` and at the Agent. */
export function sendsFailed(dsm: unknown, node: CheckpointNode | null, count: number): void {
  if (node === null || count <= 0) return
  try {
    outcomesOf(dsm)?.failedSends(node, count)
  } catch {
    // as above
  }
}
