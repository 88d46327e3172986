import { Direction, type PathwayContext } from '../pathway/context.js'

/**
 * Where a checkpoint hangs off its parent, loop detection included (`hangOff` fills it): one
 * object reused, so that a checkpoint allocates nothing but its context.
 */
export const hop = { parentHi: 0, parentLo: 0, pathwayStart: 0, edgeStart: 0, oppositeHi: 0, oppositeLo: 0, oppositeEdgeStart: 0 }

/**
 * Fills `hop` for a checkpoint of `direction` after `parent` (null: none) at `now`. The parent's
 * times must be sane (`asPathwayContext`): they become the new context's.
 */
export function hangOff(direction: Direction, parent: PathwayContext | null, now: number): void {
  if (parent === null) {
    hop.parentHi = hop.parentLo = hop.oppositeHi = hop.oppositeLo = 0
    hop.pathwayStart = hop.edgeStart = hop.oppositeEdgeStart = now
  } else if (direction !== Direction.None && direction === parent.direction) {
    // Same direction twice (produce, then produce again): hang this checkpoint off the
    // closest checkpoint of the other direction, or restart the pathway if there is none.
    hop.oppositeHi = hop.parentHi = parent.oppositeHashHi
    hop.oppositeLo = hop.parentLo = parent.oppositeHashLo
    hop.oppositeEdgeStart = parent.oppositeEdgeStartMs
    if (hop.parentHi !== 0 || hop.parentLo !== 0) {
      hop.pathwayStart = parent.pathwayStartMs
      hop.edgeStart = parent.oppositeEdgeStartMs
    } else {
      hop.pathwayStart = hop.edgeStart = now
    }
  } else {
    hop.oppositeHi = hop.parentHi = parent.hashHi
    hop.oppositeLo = hop.parentLo = parent.hashLo
    hop.oppositeEdgeStart = hop.edgeStart = parent.edgeStartMs
    hop.pathwayStart = parent.pathwayStartMs
  }
}
