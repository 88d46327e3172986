// Runs every test/**/*.test.ts and agent/test/**/*.test.ts with node's test runner (TypeScript through tsx).
// Node 20's runner takes no glob, so the files are listed here.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  )
}

const only = process.argv.slice(2)
const files = only.length > 0 ? only : [...find('test'), ...find('agent/test')].sort()
// The AWS SDK's notice that its 2027 releases need Node 22 would repeat in every test process.
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env })
process.exit(result.status ?? 1)
