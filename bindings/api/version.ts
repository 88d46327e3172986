/** pathwise's version, sent as Datadog-Meta-Tracer-Version; a test keeps it equal to package.json. */
export const VERSION = '0.1.0'
