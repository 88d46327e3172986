/**
 * AWS SDK v3 plumbing shared by the SQS and Kinesis instrumentations: a middleware that sees
 * each call's command name and input before the call and its output after, and that never
 * changes the call's outcome. Typed structurally, so that pathwise needs no AWS package at run
 * time and its plugins fit any client's `middlewareStack.use(...)`.
 */
import { createLogger } from '../common/logger.js'
import type { DataStreams } from '../api/data-streams.js'
import { withOffSwitch, wrapMethod } from '../instrument/instrumentation.js'
import { classPrototype, errorText, read } from '../common/input.js'

export const log = createLogger(false)

/** Reports a failed pathwise step once per step, and lets the call go on. */
export function fail(step: string, err: unknown): void {
  log.warnOnce(`aws:${step}`, `${step} failed, continuing without it: ${errorText(err)}`)
}

/**
 * Marks the arguments a pathwise middleware hands down, so that a second one on the same call
 * (manual and automatic together) stands aside. On the arguments, not on the handler context,
 * which a client with `cacheMiddleware` shares between calls.
 */
const HANDLED = Symbol.for('pathwise.aws.handled')

// The SDK's shapes are user data of any form: `any` at this boundary, checked where read.
type Handler = (args: { input: any; [HANDLED]?: boolean }) => Promise<{ output: any }>
type Middleware = (next: Handler, context: any) => Handler

/** The part of an SDK `MiddlewareStack` the plugins use. */
export interface MiddlewareStackLike {
  add(
    middleware: Middleware,
    options: { step: 'initialize'; priority: 'high'; name: string; override: boolean; tags: string[] },
  ): void
}

/** A `Pluggable` of the AWS SDK v3: `client.middlewareStack.use(plugin)`. */
export interface AwsPlugin {
  applyToStack(stack: MiddlewareStackLike): void
}

/**
 * What pathwise does around one call: the input to send (the caller's own or a copy), and what
 * to do with the outcome. Each hook runs under a guard: a hook that throws is reported once and
 * the call's own outcome stands.
 */
export interface Interception {
  input: any
  /**
   * The call with pathwise's input failed: the input to send once more instead (the caller's
   * own, without the contexts) when pathwise's part may be why (a size refused); undefined
   * when the error stands.
   */
  retry?(err: unknown): any
  /**
   * The answer refused some entries of a batch because of pathwise's part: the input that sends
   * those once more without it, and how to fold that second answer into the first.
   */
  resend?(output: any): { input: any; merge(first: any, second: any): any } | undefined
  /** The call finally failed (after the client's retries, and pathwise's one resend). */
  failed?(err: unknown): void
  after?(output: any): void
}

/**
 * Runs synchronously at the start of the call, in the caller's async flow. Returns undefined for
 * the commands pathwise leaves alone.
 */
export type Intercept = (commandName: string, input: any) => Interception | undefined

/**
 * The plugin of one transport. Its middleware is the outermost one (initialize step, high
 * priority): its first part then runs synchronously inside `client.send`, in the caller's async
 * flow, and the output it trims is the one the caller gets. `active` turns it into a pass-through
 * (the automatic mode's undo).
 */
export function interceptPlugin(name: string, intercept: Intercept, active: () => boolean = () => true): AwsPlugin {
  const middleware: Middleware = (next, context) => async (args) => {
    let interception: Interception | undefined
    try {
      if (active() && args[HANDLED] !== true) interception = intercept(String(context?.commandName), args.input)
    } catch (err) {
      fail(`${name} before ${context?.commandName}`, err)
    }
    if (interception === undefined) return next(args)
    const i = interception
    const step = `${name} after ${context?.commandName}`
    const send = (input: unknown) => next({ ...args, input, [HANDLED]: true })
    let result: { output: any }
    try {
      result = await send(i.input)
    } catch (err) {
      const again = guarded(step, () => i.retry?.(err))
      // Errors of the call itself reach the caller as they are.
      if (again === undefined) {
        guarded(step, () => i.failed?.(err))
        throw err
      }
      try {
        result = await send(again)
      } catch (second) {
        guarded(step, () => i.failed?.(second))
        throw second
      }
    }
    const partial = guarded(step, () => i.resend?.(result.output))
    if (partial !== undefined) {
      // A second answer that fails leaves the first one as it was: its refused entries stand.
      const second = await send(partial.input).catch(() => undefined)
      if (second !== undefined) result = { ...result, output: guarded(step, () => partial.merge(result.output, second.output)) ?? result.output }
    }
    guarded(step, () => i.after?.(result.output))
    return result
  }
  return {
    applyToStack(stack) {
      const add = read(stack, 'add')
      try {
        if (typeof add !== 'function') throw new TypeError('not a middleware stack')
        add.call(stack, middleware, { step: 'initialize', priority: 'high', name, override: true, tags: ['PATHWISE'] })
      } catch (err) {
        fail(`${name} on a client`, err)
      }
    },
  }
}

/** fn's value, or undefined (reported once) when it throws. */
function guarded<T>(step: string, fn: () => T): T | undefined {
  try {
    return fn()
  } catch (err) {
    fail(step, err)
    return undefined
  }
}

interface ClientLike {
  middlewareStack: { use(plugin: AwsPlugin): void }
}

/** The client whose `send` is running (the automatic mode): a plugin's intercept, which runs synchronously inside it, may use it. */
let callingClient: unknown

/** The client of the call being intercepted, in the automatic mode; undefined in the middleware mode. */
export function clientOfCall(): unknown {
  return callingClient
}

/**
 * The automatic mode: `Client.prototype.send` adds the plugin to each client on its first call,
 * so clients created before pathwise loaded are covered too. The undo restores `send` and turns
 * the plugins already added into pass-throughs. Node loads the SDK's dist-cjs build for `import`
 * and `require` alike (its packages have no exports map; dist-es, with extensionless imports, is
 * for bundlers), so one patched class serves both; a bundled app uses the middleware mode.
 */
export function instrumentClientClass(
  exports: unknown,
  className: string,
  dsm: DataStreams,
  makePlugin: (dsm: DataStreams, active: () => boolean) => AwsPlugin,
): () => void {
  const prototype = classPrototype(exports, className)
  if (prototype === undefined) return () => {}
  return withOffSwitch(dsm, (dsm, active) => {
    const plugin = makePlugin(dsm, active)
    const instrumented = new WeakSet<object>()
    return wrapMethod(prototype as { send: (...args: unknown[]) => unknown }, 'send', (send) =>
      function (this: ClientLike, ...args: unknown[]) {
        try {
          if (!instrumented.has(this)) {
            instrumented.add(this)
            this.middlewareStack.use(plugin)
          }
        } catch (err) {
          fail(`instrumenting a ${className}`, err)
        }
        const previous = callingClient
        callingClient = this
        try {
          return send.apply(this, args)
        } finally {
          callingClient = previous
        }
      },
    )
  })
}
