/**
 * `npm run build:web [dir]`: bundles the web pages once and writes them (default
 * packages/web/dist/pages), so that a registry serves them without bundling at start. The
 * image runs it (deploy/Dockerfile); in a checkout it is optional: without it, or after an
 * edit to the sources, the registry bundles at start.
 */
import { resolve } from 'node:path';
import { PREBUILT_DIR, buildPrebuilt } from './prebuilt';

async function main(): Promise<void> {
  const dir = process.argv[2] === undefined ? PREBUILT_DIR : resolve(process.argv[2]);
  const started = Date.now();
  const assets = await buildPrebuilt(dir);
  let bytes = 0;
  for (const asset of assets.values()) bytes += asset.body.length;
  process.stdout.write(
    `web pages: ${assets.size} assets, ${bytes} bytes, written to ${dir} in ${Date.now() - started} ms\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`build:web failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
