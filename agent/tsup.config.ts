import { cp } from 'node:fs/promises'
import { defineConfig } from 'tsup'

// The commands (cli, and the `pathwise-agent` bin), the server and its worker threads (started from
// ./decode-worker.js and ./persistence-writer.js beside the modules); the page is served from ./ui beside the modules. Every
// module is bundled into dist/ itself, whatever its folder in src/ (see http/static.ts).
export default defineConfig({
  entry: {
    cli: 'src/cli.ts',
    server: 'src/server.ts',
    bin: 'src/bin.ts',
    'decode-worker': 'src/intake/decode-worker.ts',
    'persistence-writer': 'src/model/persistence-writer.ts',
  },
  format: ['esm'],
  dts: { entry: { cli: 'src/cli.ts', server: 'src/server.ts' } },
  sourcemap: true,
  target: 'es2022',
  outDir: 'dist',
  onSuccess: () => cp('src/ui', 'dist/ui', { recursive: true }),
})
