/**
 * The browser pages as in-memory assets: the two apps bundled by esbuild (a few hundred ms) and
 * the static HTML and CSS next to them. The registry serves the prebuilt ones when the image
 * has them (prebuilt.ts, `npm run build:web`) and what this bundles otherwise, as in dev.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface WebAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

/** Asset paths as the registry serves them, e.g. `/chat/` or `/assets/chat.js`. */
export type WebAssets = ReadonlyMap<string, WebAsset>;

const SRC = __dirname;
const STATIC = join(__dirname, '..', 'static');
/**
 * The repository root: esbuild bundles from it, and the prebuilt manifest (prebuilt.ts) names
 * the bundles' sources relative to it.
 */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** Browser entry points, bundled to `/assets/<name>.js`. */
const APPS = ['chat', 'dashboard'] as const;

/**
 * Service workers, bundled and served at their own path: a worker's scope is its directory,
 * so the chat page's must live under `/chat/`.
 */
const WORKERS: Readonly<Record<string, { entry: string; path: string }>> = {
  'chat-sw': { entry: join('chat', 'service-worker.ts'), path: '/chat/sw.js' },
};

const PAGES: Readonly<Record<string, string>> = {
  '/chat/': 'chat.html',
  '/dashboard/': 'dashboard.html',
  '/assets/chat.css': 'chat.css',
  '/assets/dashboard.css': 'dashboard.css',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

function contentTypeOf(file: string): string {
  const ext = file.slice(file.lastIndexOf('.'));
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

/**
 * Bundles the chat client, its service worker and the dashboard for browsers and reads the
 * static pages.
 *
 * @example
 * const web = await buildWebAssets();
 * web.get('/chat/')?.contentType; // 'text/html; charset=utf-8'
 */
export async function buildWebAssets(): Promise<WebAssets> {
  return (await bundleWebAssets()).assets;
}

/** The assets, and the absolute paths of every file they were made from. */
export async function bundleWebAssets(): Promise<{
  readonly assets: WebAssets;
  readonly sources: readonly string[];
}> {
  // Loaded here, not at the top: a registry serving prebuilt pages never loads esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: REPO_ROOT,
    metafile: true,
    entryPoints: {
      ...Object.fromEntries(APPS.map((app) => [app, join(SRC, app, 'main.ts')])),
      ...Object.fromEntries(
        Object.entries(WORKERS).map(([name, worker]) => [name, join(SRC, worker.entry)]),
      ),
    },
    bundle: true,
    write: false,
    outdir: '/assets',
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    minify: true,
    logLevel: 'silent',
  });
  const assets = new Map<string, WebAsset>();
  const workerPaths = new Map(
    Object.entries(WORKERS).map(([name, worker]) => [`/assets/${name}.js`, worker.path]),
  );
  for (const file of result.outputFiles) {
    assets.set(workerPaths.get(file.path) ?? file.path, {
      contentType: contentTypeOf(file.path),
      body: Buffer.from(file.contents),
    });
  }
  for (const [path, file] of Object.entries(PAGES)) {
    assets.set(path, {
      contentType: contentTypeOf(file),
      body: await readFile(join(STATIC, file)),
    });
  }
  const sources = [
    // Files only: esbuild also lists modules it stubbed out, as `(disabled):<path>`.
    ...Object.keys(result.metafile.inputs)
      .filter((input) => !/^\([a-z]+\):/.test(input))
      .map((input) => resolve(REPO_ROOT, input)),
    ...Object.values(PAGES).map((file) => join(STATIC, file)),
  ];
  return { assets, sources };
}
