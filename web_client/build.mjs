// Bundles src/main.js into dist/app.js (no source map; inline ones with --watch) and copies the page
// and the styles. Pages imported with `import()` (the course editor: tiptap, ProseMirror, Yjs)
// become chunks in dist/chunks/, loaded only when their page opens.
// `node build.mjs --watch` rebuilds on every change (development).
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const watch = process.argv.includes('--watch');

/** Copy the static files; index.html gets a version stamp so a new bundle is never stale. */
async function copyStatic() {
  for (const file of ['app.css', 'favicon.svg', 'sw.js']) await copyFile(join(src, file), join(dist, file));
  const stamp = async (file) =>
    createHash('sha256').update(await readFile(join(dist, file))).digest('hex').slice(0, 10);
  const html = (await readFile(join(src, 'index.html'), 'utf8'))
    .replace('/static/app.js', `/static/app.js?v=${await stamp('app.js')}`)
    .replace('/static/app.css', `/static/app.css?v=${await stamp('app.css')}`);
  await writeFile(join(dist, 'index.html'), html);
}

const options = {
  entryPoints: { app: join(src, 'main.js') },
  outdir: dist,
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  metafile: true,
  bundle: true,
  format: 'esm',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  minify: !watch,
  // No source map in production (not served either: realtime/webclient.py); inline in watch.
  sourcemap: watch ? 'inline' : false,
  legalComments: 'linked',
  logLevel: 'info',
  plugins: [{
    name: 'copy-static',
    setup(build) {
      build.onEnd(async (result) => { if (!result.errors.length) await copyStatic(); });
    },
  }],
};

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
