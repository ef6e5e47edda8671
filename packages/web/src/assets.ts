/**
 * The browser pages as in-memory assets: the two apps bundled by esbuild at startup (a few
 * hundred ms, once per process) and the static HTML and CSS next to them. The registry serves
 * what this returns; nothing is written to disk, so there is no build step to forget.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface WebAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

/** Asset paths as the registry serves them, e.g. `/chat/` or `/assets/chat.js`. */
export type WebAssets = ReadonlyMap<string, WebAsset>;

const SRC = __dirname;
const STATIC = join(__dirname, '..', 'static');

/** Browser entry points, bundled to `/assets/<name>.js`. */
const APPS = ['chat', 'dashboard'] as const;

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
 * Bundles the chat client and the dashboard for browsers and reads the static pages.
 *
 * @example
 * const web = await buildWebAssets();
 * web.get('/chat/')?.contentType; // 'text/html; charset=utf-8'
 */
export async function buildWebAssets(): Promise<WebAssets> {
  const result = await build({
    entryPoints: Object.fromEntries(APPS.map((app) => [app, join(SRC, app, 'main.ts')])),
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
  for (const file of result.outputFiles) {
    assets.set(file.path, {
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
  return assets;
}
