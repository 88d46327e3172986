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

/** What pathwise does around one call: the input to send (the caller's own or a copy), and what to do with the output. */
export interface Interception {
  input: any
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
    // Errors of the call itself reach the caller as they are.
    const result = await next({ ...args, input: interception.input, [HANDLED]: true })
    try {
      interception.after?.(result.output)
    } catch (err) {
      fail(`${name} after ${context?.commandName}`, err)
    }
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

interface ClientLike {
  middlewareStack: { use(plugin: AwsPlugin): void }
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
        return send.apply(this, args)
      },
    )
  })
}
