/** Where the RabbitMQ instrumentations report trouble: once per kind, and the user's call goes on. */
import { createLogger } from '../common/logger.js'
import { errorText } from '../common/input.js'

export const log = createLogger(false)

/** Reports a failed pathwise step once per step; the caller then carries on without it. */
export function fail(step: string, err: unknown): void {
  log.warnOnce(`rabbitmq:${step}`, `rabbitmq ${step} failed, continuing without it: ${errorText(err)}`)
}
