#!/usr/bin/env node
/**
 * The `pathwise` command. `agent` and `top` come with the agent package, which is its own so that
 * the library stays lean: they run it where it is installed and say how to install it elsewhere.
 */
import { VERSION } from './api/version.js'

const INSTALL = 'npm install @pathwise/agent'
/** A specifier in a variable: the agent is looked up at run time, neither bundled nor type-checked here. */
const AGENT_CLI = '@pathwise/agent/cli'

interface AgentCli {
  main(argv: string[]): Promise<void>
}

const argv = process.argv.slice(2)
const [command] = argv
if (command === '--version' || command === '-v') {
  process.stdout.write(`${VERSION}\n`)
} else {
  let cli: AgentCli | undefined
  try {
    cli = (await import(AGENT_CLI)) as AgentCli
  } catch (err) {
    // only the agent package missing, not a module missing inside it
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !String((err as Error).message).includes("'@pathwise/agent")) throw err
  }
  if (cli !== undefined) {
    await cli.main(argv)
  } else {
    process.stderr.write(`pathwise ${VERSION}: \`pathwise agent\` and \`pathwise top\` come with the agent package. Install it with:\n  ${INSTALL}\n`)
    const help = command === undefined || command === 'help' || argv.includes('--help') || argv.includes('-h')
    process.exitCode = help ? 0 : 1
  }
}
