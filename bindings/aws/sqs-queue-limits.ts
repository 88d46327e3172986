/**
 * The largest message each SQS queue takes (its MaximumMessageSize, 1,024 bytes to 1 MiB), as far
 * as pathwise knows it, learned without delaying a send:
 *
 * - until known, a queue is taken to allow 256 KiB, the setting of every queue made before AWS
 *   raised the maximum to 1 MiB, unless changed: a context that would push a message past it is
 *   left out;
 * - the automatic mode asks: on the first send to a queue, one GetQueueAttributes through the
 *   same client, in the background (the send goes at once, on the assumption);
 * - in either mode, the application's own GetQueueAttributes answers, SetQueueAttributes and
 *   CreateQueue calls that state it teach it;
 * - a send SQS refused for its size (InvalidParameterValue, "Message must be shorter than N
 *   bytes") teaches N; pathwise then sends the message again without its context.
 *
 * A SendMessageBatch may carry 1 MiB in all, whatever its queue's limit.
 */
import { TransportNodes } from '../instrument/transport-nodes.js'
import { read } from '../common/input.js'

/** What a queue is taken to allow until pathwise knows better. */
export const ASSUMED_MESSAGE_BYTES = 262_144
/** The most a SendMessageBatch's messages may weigh together. */
export const MAX_BATCH_BYTES = 1_048_576
const MIN_MESSAGE_BYTES = 1024
const MAX_MESSAGE_BYTES = 1_048_576

export interface QueueLimit {
  /** The largest message, body and attributes, the queue is known or taken to take. */
  bytes: number
  known: boolean
  /** Whether pathwise asked already (once per queue: an answer or a refusal is final). */
  asked: boolean
}

/** Sends a GetQueueAttributes of MaximumMessageSize for a queue through the client of the call being made; its answer comes back through `learnFrom`. */
export type QueueLookup = (queueUrl: string) => void

export class QueueLimits {
  private readonly limits = new TransportNodes<QueueLimit>(
    () => ({ bytes: ASSUMED_MESSAGE_BYTES, known: false, asked: false }),
    () => true,
  )

  constructor(private readonly lookup?: QueueLookup) {}

  /** The queue's limit, asked for in the background the first time when the mode allows. */
  of(queueUrl: string): QueueLimit {
    const limit = this.limits.get(queueUrl)
    if (!limit.known && !limit.asked && this.lookup !== undefined) {
      limit.asked = true
      this.lookup(queueUrl)
    }
    return limit
  }

  /** A MaximumMessageSize stated for the queue (an attribute's text or number); others are ignored. */
  learn(queueUrl: unknown, value: unknown): void {
    if (typeof queueUrl !== 'string') return
    const bytes = typeof value === 'string' && /^\d{4,7}$/.test(value) ? Number(value) : value
    if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < MIN_MESSAGE_BYTES || bytes > MAX_MESSAGE_BYTES) return
    const limit = this.limits.get(queueUrl)
    limit.bytes = bytes
    limit.known = true
  }

  /** What the answer to a call teaches: GetQueueAttributes, SetQueueAttributes and CreateQueue state MaximumMessageSize. */
  learnFrom(command: string, input: unknown, output: unknown): void {
    if (command === 'GetQueueAttributesCommand') this.learn(read(input, 'QueueUrl'), read(read(output, 'Attributes'), 'MaximumMessageSize'))
    else if (command === 'SetQueueAttributesCommand') this.learn(read(input, 'QueueUrl'), read(read(input, 'Attributes'), 'MaximumMessageSize'))
    else if (command === 'CreateQueueCommand') this.learn(read(output, 'QueueUrl'), read(read(input, 'Attributes'), 'MaximumMessageSize'))
  }

  /**
   * A refusal of a message of `size` bytes (with its context) for its size: the limit SQS names,
   * or else just under that size. Returns whether it was such a refusal.
   */
  refused(queueUrl: string, size: number, code: unknown, message: unknown): boolean {
    if (!isSizeRefusal(code, message)) return false
    const named = /shorter than (\d+) bytes/i.exec(String(message))
    const limit = this.limits.get(queueUrl)
    const bytes = named === null ? size - 1 : Number(named[1])
    if (bytes < limit.bytes || !limit.known) limit.bytes = Math.max(MIN_MESSAGE_BYTES, bytes)
    limit.known = true
    return true
  }
}

/** SQS's refusal of a message for its size: InvalidParameterValue naming the size ("Message must be shorter than 262144 bytes"). */
export function isSizeRefusal(code: unknown, message: unknown): boolean {
  return typeof code === 'string' && code.includes('InvalidParameterValue') && typeof message === 'string' && /\b(shorter than|size|too long|too large)\b/i.test(message)
}

/** The code of an SDK error: its name, or the query protocol's Code where the name is generic. */
export function errorCode(err: unknown): unknown {
  const name = read(err, 'name')
  return typeof name === 'string' && name.includes('InvalidParameterValue') ? name : (read(err, 'Code') ?? read(err, 'code') ?? name)
}

/** SQS's refusal of a whole SendMessageBatch whose messages weigh more than 1 MiB in all. */
export function isBatchTooLong(err: unknown): boolean {
  const name = read(err, 'name')
  const code = read(err, 'Code') ?? read(err, 'code')
  return (typeof name === 'string' && name.endsWith('BatchRequestTooLong')) || (typeof code === 'string' && code.endsWith('BatchRequestTooLong'))
}

/** The automatic mode's lookup: a GetQueueAttributes through the client of the call, with the SDK module's own command class. */
export function lookupThrough(exports: unknown, clientOfCall: () => unknown): QueueLookup | undefined {
  const Command = read(exports, 'GetQueueAttributesCommand')
  if (typeof Command !== 'function') return undefined
  return (queueUrl) => {
    try {
      const client = clientOfCall()
      const send = read(client, 'send')
      if (typeof send !== 'function') return
      const command = new (Command as new (input: unknown) => unknown)({ QueueUrl: queueUrl, AttributeNames: ['MaximumMessageSize'] })
      // The answer teaches the limit on its way through pathwise's middleware; a failure (no permission) leaves the assumption.
      void Promise.resolve(send.call(client, command)).catch(() => {})
    } catch {
      // as above
    }
  }
}
