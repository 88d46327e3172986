/** The Kafka clients pathwise instruments already (instrument/claims.ts). */
import { claimsFor } from '../instrument/claims.js'

export const { claim, isClaimed } = claimsFor('kafka')
