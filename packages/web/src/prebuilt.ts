/**
 * The web pages bundled ahead of time (`npm run build:web`, run by deploy/Dockerfile), so that a
 * registry serves them without loading esbuild or bundling at every start. The build writes
 * each asset to a file and a manifest naming them with the sha256 of every source file the
 * bundles were made from; a registry serves the prebuilt assets only while those sources are
 * unchanged, and bundles them itself otherwise (no build yet, or an edit since, as in dev).
 *
 * @example
 * const web = await webAssets(); // prebuilt when current, bundled otherwise
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { WebAsset, WebAssets } from './assets';
import { REPO_ROOT, bundleWebAssets } from './assets';

/** Where `npm run build:web` writes, inside the package (ignored by git). */
export const PREBUILT_DIR = join(__dirname, '..', 'dist', 'pages');

const MANIFEST = 'manifest.json';

interface Manifest {
  /** Served path -> file in the directory and its content type. */
  readonly assets: Readonly<
    Record<string, { readonly file: string; readonly contentType: string }>
  >;
  /** Source file (relative to the repository root) -> sha256, hex. */
  readonly sources: Readonly<Record<string, string>>;
}

function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/**
 * Writes `assets` and their manifest into `dir` (replacing what was there); `sources` are the
 * absolute paths of every file the bundles were made from.
 */
export async function writePrebuilt(
  dir: string,
  assets: WebAssets,
  sources: readonly string[],
): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entries: Record<string, { file: string; contentType: string }> = {};
  let n = 0;
  for (const [path, asset] of assets) {
    // Flat, numbered names: served paths hold slashes (`/chat/`, `/chat/sw.js`).
    const file = `${n++}${path.endsWith('/') ? '.html' : path.slice(path.lastIndexOf('.'))}`;
    await writeFile(join(dir, file), asset.body);
    entries[path] = { file, contentType: asset.contentType };
  }
  const hashes: Record<string, string> = {};
  for (const source of [...sources].sort())
    hashes[relative(REPO_ROOT, source)] = sha256(await readFile(source));
  const manifest: Manifest = { assets: entries, sources: hashes };
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Why the prebuilt assets in `dir` cannot be served, or undefined when they can. */
export async function prebuiltProblem(dir: string): Promise<string | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return `no prebuilt pages in ${dir}`;
  }
  for (const [source, hash] of Object.entries(manifest.sources)) {
    const body = await readFile(join(REPO_ROOT, source)).catch(() => undefined);
    if (body === undefined || sha256(body) !== hash) return `${source} changed since the build`;
  }
  return undefined;
}

/**
 * Bundles the pages and writes them with their manifest into `dir`: what `npm run build:web`
 * does.
 */
export async function buildPrebuilt(dir = PREBUILT_DIR): Promise<WebAssets> {
  const { assets, sources } = await bundleWebAssets();
  await writePrebuilt(dir, assets, sources);
  return assets;
}

/** The prebuilt assets in `dir`, or undefined when there are none or they are stale. */
export async function loadPrebuilt(dir: string): Promise<WebAssets | undefined> {
  if ((await prebuiltProblem(dir)) !== undefined) return undefined;
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  const assets = new Map<string, WebAsset>();
  for (const [path, { file, contentType }] of Object.entries(manifest.assets))
    assets.set(path, { contentType, body: await readFile(join(dir, file)) });
  return assets;
}

/** How the registry got its pages, for its start log. */
export type WebAssetsSource = 'prebuilt' | 'bundled';

/**
 * The pages for the registry: the prebuilt ones in `dir` when they are current, otherwise
 * bundled now (esbuild is loaded only then).
 */
export async function webAssets(
  dir = PREBUILT_DIR,
): Promise<{ readonly assets: WebAssets; readonly source: WebAssetsSource }> {
  const prebuilt = await loadPrebuilt(dir);
  if (prebuilt !== undefined) return { assets: prebuilt, source: 'prebuilt' };
  return { assets: (await bundleWebAssets()).assets, source: 'bundled' };
}
