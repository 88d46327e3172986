#!/usr/bin/env node
/** `pathwise-agent agent|top …`, the same commands as the library's `pathwise` bin. */
import { main } from './cli.js'

await main(process.argv.slice(2))
