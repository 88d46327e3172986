import { spawn } from 'node:child_process'

export interface PeerStarter {
  /** The first line the script printed (it describes the peers it started). */
  firstLine: Promise<string>
  kill(): void
}

/**
 * Runs `script` (ESM, through tsx) in a process of its own that then lives
 * until killed: the script starts peers and prints one line about them. For
 * tests of what becomes of peers when the process that started them dies
 * without cleaning up.
 */
export function startPeersInAnotherProcess(script: string): PeerStarter {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `${script}\nsetInterval(() => {}, 1_000);`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const firstLine = new Promise<string>((resolve, reject) => {
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')))
    })
    child.once('exit', (code) => reject(new Error(`peer-starting process exited early (${code})`)))
  })
  return { firstLine, kill: () => child.kill('SIGKILL') }
}
