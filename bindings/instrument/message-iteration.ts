/**
 * Which message's context is current while the application walks the messages a client handed
 * over at once (a Kafka batch's `batch.messages`, an SQS receive's `Messages`, a Kinesis
 * `Records`), so that a send made while handling a message links to that message, however the
 * loop is written around it:
 *
 * - `for...of` (and `for await`, `Array.from`, destructuring, spreading): when the loop takes a
 *   message, its context becomes current for the loop's flow, until the loop takes the next one;
 *   after the loop, the last message taken stays current (a loop that breaks off at a message
 *   usually goes on with it).
 * - `forEach` and `map` (`Promise.all(messages.map(handle))`): each callback runs with its own
 *   message's context pinned (as withMessageContext pins it), its async continuations included,
 *   so handlers running concurrently each keep their own.
 *
 * pathwise gives that one array a prototype of its own between it and Array.prototype, holding
 * its `Symbol.iterator`, `forEach` and `map` (and `constructor`: Array, so that `map`, `filter`
 * and `slice` still make plain arrays). Not own properties: an array with an own Symbol.iterator
 * turns off V8's fast path for spreading and `for...of` over every array of the process (kafkajs's
 * producer spreads one a message: 0.9 → 3.9 µs), where one on another prototype does not. The
 * array has no new own property (enumeration, JSON, spread copies and structuredClone see a plain
 * array) and stays an `Array` to `Array.isArray` and `instanceof`; only its prototype differs, which
 * deepStrictEqual against a plain array notices. A message's context is the one
 * stamped on the message itself (contextOf), so a sorted or spliced array stays right. Indexed
 * loops (`messages[i]`) cannot be followed: the transports document their rule for those.
 */
import type { PathwayContext } from '../pathway/context.js'
import type { DataStreams } from '../api/data-streams.js'
import { contextOf, withMessageContext } from './received-messages.js'

/** The walks in progress over one array: a transport's other rules stand aside while one runs. */
export interface Walks {
  readonly dsm: DataStreams
  /** Iterators that have started and not finished. */
  iterating: number
  /** The context a walk made current last. */
  entered: PathwayContext | undefined
}

/**
 * An array's walks are kept on the array itself, in a private field a class stamps onto it (as
 * received-messages.ts stamps a message's context): every followed array then shares one
 * prototype, whose methods find the walks there.
 */
const ReturnsTarget = function (target: object) {
  return target
} as unknown as new (target: object) => object

class WalkStamp extends ReturnsTarget {
  #walks: Walks
  constructor(target: object, walks: Walks) {
    super(target)
    this.#walks = walks
  }
  static of(array: unknown): Walks | undefined {
    return array !== null && typeof array === 'object' && #walks in array ? (array as WalkStamp).#walks : undefined
  }
}

const ITERATOR = function (this: unknown[]) {
  const walks = WalkStamp.of(this)
  return walks === undefined ? Array.prototype[Symbol.iterator].call(this) : new MessageIterator(walks, this)
}

const FOR_EACH = function (this: unknown[], callback: unknown, thisArg?: unknown) {
  const walks = WalkStamp.of(this)
  // A callback that is no function: the native method throws its own TypeError.
  if (walks === undefined || typeof callback !== 'function') return Array.prototype.forEach.call(this, callback as never, thisArg)
  Array.prototype.forEach.call(this, (m: unknown, i: number, a: unknown[]) => inContextOf(walks.dsm, m, () => callback.call(thisArg, m, i, a)))
}

const MAP = function (this: unknown[], callback: unknown, thisArg?: unknown) {
  const walks = WalkStamp.of(this)
  if (walks === undefined || typeof callback !== 'function') return Array.prototype.map.call(this, callback as never, thisArg)
  return Array.prototype.map.call(this, (m: unknown, i: number, a: unknown[]) => inContextOf(walks.dsm, m, () => callback.call(thisArg, m, i, a)))
}

const hidden = (value: unknown): PropertyDescriptor => ({ value, writable: true, configurable: true, enumerable: false })

/** The prototype every followed array gets: Array.prototype's behaviour, plus the walks. */
const FOLLOWED: object = Object.create(Array.prototype, {
  [Symbol.iterator]: hidden(ITERATOR),
  forEach: hidden(FOR_EACH),
  map: hidden(MAP),
  constructor: hidden(Array),
})

/** %IteratorPrototype%: the iterators handed out get its helpers (`toArray`, `map`, ... where the runtime has them). */
const ITERATOR_PROTOTYPE = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as object

/**
 * Follows the walks over `messages`, an array a client handed to the application. Undefined (and
 * nothing changed) for anything but a plain extensible array, or one already followed (by another
 * DataStreams or copy of pathwise: the first one's rule applies).
 */
export function followWalks(dsm: DataStreams, messages: unknown): Walks | undefined {
  try {
    if (!Array.isArray(messages) || Object.getPrototypeOf(messages) !== Array.prototype || !Object.isExtensible(messages)) return undefined
    if (Object.prototype.hasOwnProperty.call(messages, Symbol.iterator)) return undefined
    const walks: Walks = { dsm, iterating: 0, entered: undefined }
    new WalkStamp(messages, walks)
    Object.setPrototypeOf(messages, FOLLOWED)
    return walks
  } catch {
    // A frozen or exotic array: the walks go unfollowed.
    return undefined
  }
}

/** fn with the message's context pinned, when pathwise saw the message arrive; else as it is. */
function inContextOf<T>(dsm: DataStreams, message: unknown, fn: () => T): T {
  return message !== null && typeof message === 'object' && contextOf(message) !== undefined ? withMessageContext(dsm, message, fn) : fn()
}

/** Array.prototype's iterator, plus: the context of each message taken made current. */
class MessageIterator {
  private index = 0
  private state: 'new' | 'walking' | 'done' = 'new'

  constructor(
    private readonly walks: Walks,
    private readonly array: unknown[],
  ) {}

  next(): IteratorResult<unknown> {
    if (this.state === 'new') {
      this.state = 'walking'
      this.walks.iterating++
    }
    if (this.state === 'walking' && this.index < this.array.length) {
      const message = this.array[this.index++]
      const ctx = message !== null && typeof message === 'object' ? contextOf(message) : undefined
      if (ctx !== undefined) {
        enter(this.walks.dsm, ctx)
        this.walks.entered = ctx
      }
      return { value: message, done: false }
    }
    this.finish()
    return { value: undefined, done: true }
  }

  /** A loop that breaks off (break, return, a throw, destructuring fewer than all). */
  return(value?: unknown): IteratorResult<unknown> {
    this.finish()
    return { value, done: true }
  }

  [Symbol.iterator](): this {
    return this
  }

  private finish(): void {
    if (this.state === 'walking') this.walks.iterating--
    this.state = 'done'
  }
}

/** Makes ctx current for the rest of the walking flow, unless it is already; a DataStreams that throws changes nothing. */
function enter(dsm: DataStreams, ctx: PathwayContext): void {
  try {
    if (dsm.currentContext() !== ctx) dsm.enterContext(ctx)
  } catch {
    // the walk goes on without it
  }
}

Object.setPrototypeOf(MessageIterator.prototype, ITERATOR_PROTOTYPE)
