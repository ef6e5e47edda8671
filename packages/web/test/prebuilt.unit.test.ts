/**
 * The pages prebuilt by `npm run build:web`: the same assets as bundling at start, served as
 * they are while their sources are unchanged (without loading esbuild), and bundled again when
 * they are missing or a source changed since the build.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Esbuild from 'esbuild';
import type { WebAssets } from '../src/assets';
import { buildWebAssets } from '../src/assets';
import { buildPrebuilt, loadPrebuilt, prebuiltProblem, webAssets } from '../src/prebuilt';

// esbuild as it is, counting its bundles.
const mockBundles = { count: 0 };
jest.mock('esbuild', () => {
  const actual = jest.requireActual<typeof Esbuild>('esbuild');
  return {
    ...actual,
    build: (...args: Parameters<typeof actual.build>) => {
      mockBundles.count++;
      return actual.build(...args);
    },
  };
});
const dirs: string[] = [];
const freshDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-web-prebuilt-'));
  dirs.push(dir);
  return dir;
};

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function summary(assets: WebAssets): Record<string, { contentType: string; bytes: number }> {
  return Object.fromEntries(
    [...assets].map(([path, a]) => [path, { contentType: a.contentType, bytes: a.body.length }]),
  );
}

describe('prebuilt web pages', () => {
  let dir: string;
  let bundled: WebAssets;
  beforeAll(async () => {
    dir = freshDir();
    bundled = await buildWebAssets();
    await buildPrebuilt(dir);
  });

  it('are the assets bundling at start makes, byte for byte', async () => {
    const prebuilt = await loadPrebuilt(dir);
    expect(prebuilt).toBeDefined();
    expect(summary(prebuilt!)).toEqual(summary(bundled));
    for (const [path, asset] of bundled)
      expect(prebuilt!.get(path)!.body.equals(asset.body)).toBe(true);
    expect(await prebuiltProblem(dir)).toBeUndefined();
  });

  it('are what the registry serves when present and current; bundled when absent', async () => {
    const fromBuild = await webAssets(dir);
    expect(fromBuild.source).toBe('prebuilt');
    const empty = freshDir();
    const fromSources = await webAssets(empty);
    expect(fromSources.source).toBe('bundled');
    expect(summary(fromSources.assets)).toEqual(summary(fromBuild.assets));
  });

  it('are not served once a source changed since the build', async () => {
    const stale = freshDir();
    await buildPrebuilt(stale);
    const manifestFile = join(stale, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
      sources: Record<string, string>;
    };
    const source = 'packages/web/src/chat/main.ts';
    expect(manifest.sources[source]).toMatch(/^[0-9a-f]{64}$/);
    // As after an edit to the source: its recorded hash no longer matches.
    manifest.sources[source] = '0'.repeat(64);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    expect(await prebuiltProblem(stale)).toBe(`${source} changed since the build`);
    expect(await loadPrebuilt(stale)).toBeUndefined();
    expect((await webAssets(stale)).source).toBe('bundled');
  });

  it('are served without bundling: esbuild runs only when they are missing or stale', async () => {
    const before = mockBundles.count;
    expect((await webAssets(dir)).source).toBe('prebuilt');
    expect(mockBundles.count).toBe(before);
    expect((await webAssets(freshDir())).source).toBe('bundled');
    expect(mockBundles.count).toBe(before + 1);
  });
});

describe('the image', () => {
  it('bundles the pages at build time and ships them to the runtime stage', () => {
    const dockerfile = readFileSync(join(__dirname, '../../../deploy/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM deps AS web$/m);
    expect(dockerfile).toMatch(/^RUN npm run build:web$/m);
    expect(dockerfile).toMatch(
      /^COPY --from=web \/app\/packages\/web\/dist\/pages \.\/packages\/web\/dist\/pages$/m,
    );
    const root = JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(root.scripts['build:web']).toBe('npm run build -w @chat/web');
  });
});
