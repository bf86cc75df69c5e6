// Bundles app.js (and Amplify JS v6) for the browser into dist/app.js with esbuild.
//   node client-examples/web/build.mjs [outdir]      (`make web` runs it; the default outdir is dist/)
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, 'dist'));

await build({
  entryPoints: [join(here, 'app.js')],
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
