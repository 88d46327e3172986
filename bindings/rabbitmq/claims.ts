/**
 * The channels (amqplib) and links (rhea) instrumented one by one by the explicit functions, and the
 * connections and containers they were handed: the automatic mode's wrappers on the classes stand
 * aside for them (instrument/claims.ts).
 */
import { claimsFor } from '../instrument/claims.js'

export const { claim, isClaimed } = claimsFor('rabbitmq')
