/**
 * What `npm pack` puts in the SDK's tarballs: the build output, README and LICENSE, and a
 * manifest whose exports map points at them; no sources, tests or workspace files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SdkBuild } from './sdk-build';
import { buildSdk, REPO_ROOT, run } from './sdk-build';

let sdk: SdkBuild;
beforeAll(async () => {
  sdk = await buildSdk({ pack: false });
}, 120_000);
afterAll(() => sdk?.remove());

interface PackResult {
  readonly name: string;
  readonly files: readonly { readonly path: string }[];
}

async function packedFiles(dir: string): Promise<{ name: string; files: string[] }> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], {
    cwd: join(sdk.out, dir),
    timeout: 60_000,
  });
  const [result] = JSON.parse(stdout) as PackResult[];
  return { name: result!.name, files: result!.files.map((f) => f.path).sort() };
}

/** One declaration file per module of the package's sources (token.browser.ts is bundled only). */
function declarationsOf(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, 'packages', dir, 'src'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.browser.ts'))
    .map((f) => `dist/${f.replace(/\.ts$/, '.d.ts')}`);
}

describe.each(['protocol', 'client'])('@chat/%s tarball', (dir) => {
  it('holds the bundles, the declarations, README and LICENSE only', async () => {
    const { name, files } = await packedFiles(dir);
    expect(name).toBe(`@chat/${dir}`);
    const expected = [
      'LICENSE',
      'README.md',
      'package.json',
      'dist/browser.mjs',
      'dist/index.cjs',
      'dist/index.mjs',
      ...declarationsOf(dir),
    ].sort();
    expect(files).toEqual(expected);
  });

  it('has a publishable manifest whose exports map names files of the tarball', () => {
    const manifest = JSON.parse(readFileSync(join(sdk.out, dir, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.sideEffects).toBe(false);
    expect(manifest.files).toEqual(['dist', 'README.md', 'LICENSE']);
    expect(manifest.exports['.']).toEqual({
      types: './dist/index.d.ts',
      browser: './dist/browser.mjs',
      'react-native': './dist/browser.mjs',
      import: './dist/index.mjs',
      require: './dist/index.cjs',
    });
    expect(manifest.main).toBe('./dist/index.cjs');
    const workspace = JSON.parse(
      readFileSync(join(REPO_ROOT, 'packages', dir, 'package.json'), 'utf8'),
    );
    expect(manifest.version).toBe(workspace.version);
    expect(manifest.dependencies).toEqual(workspace.dependencies);
  });

  it('has a browser bundle without Node built-ins', () => {
    const browser = readFileSync(join(sdk.out, dir, 'dist/browser.mjs'), 'utf8');
    expect(browser).not.toMatch(/from ['"]node:/);
    expect(browser).not.toMatch(/require\(['"]node:/);
    // The Node bundles do use them (node:crypto for tokens, node:module for `ws`), so the
    // check above is not vacuous.
    const node = readFileSync(join(sdk.out, dir, 'dist/index.mjs'), 'utf8');
    expect(node).toMatch(/from ['"]node:/);
  });
});
