#!/usr/bin/env node
/**
 * Builds the installable SDK: @chat/protocol and @chat/client as npm packages with ESM, CJS
 * and browser bundles (esbuild) and .d.ts declarations (tsc), each in a package directory of
 * its own, with a generated package.json, and packs them.
 *
 * The workspace's package.json files keep pointing at the TypeScript sources, which tsx, tsc,
 * jest and the web bundle use; only the generated manifests point at the build output.
 *
 *   node scripts/build-sdk.mjs [--out <dir>] [--tarballs <dir>]
 *
 * --out: where the package directories go (default: a temporary directory, removed at the
 * end). Not inside the repository: jest would find two packages named @chat/protocol.
 * --tarballs: `npm pack` both into this directory and print their paths as JSON:
 * {"protocol": ".../chat-protocol-0.1.0.tgz", "client": ".../chat-client-0.1.0.tgz"}.
 * `npm run build:sdk` packs into dist/sdk.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: { out: { type: 'string' }, tarballs: { type: 'string' } },
});
const out = args.out === undefined ? mkdtempSync(join(tmpdir(), 'chat-sdk-')) : resolve(args.out);
const tarballDir = args.tarballs === undefined ? undefined : resolve(args.tarballs);

/**
 * Node's ESM has no `require`, and the client requires `ws` lazily, only when the runtime has
 * no global WebSocket (Node 20): the ESM bundle for Node gets one from createRequire.
 */
const NODE_ESM_REQUIRE =
  "import { createRequire as __createRequire } from 'node:module';\n" +
  'const require = __createRequire(import.meta.url);';

const packages = [
  { dir: 'protocol', nodeEsmBanner: '' },
  { dir: 'client', nodeEsmBanner: NODE_ESM_REQUIRE },
];

function run(command, argv, cwd = root) {
  return execFileSync(command, argv, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** The published manifest: the workspace's identity and dependencies, the build's entry points. */
function manifest(source) {
  return {
    name: source.name,
    version: source.version,
    description: source.description,
    license: source.license,
    engines: { node: '>=20' },
    main: './dist/index.cjs',
    module: './dist/index.mjs',
    types: './dist/index.d.ts',
    exports: {
      '.': {
        types: './dist/index.d.ts',
        // Bundlers for browsers and React Native: no Node built-ins (see each package's README).
        browser: './dist/browser.mjs',
        'react-native': './dist/browser.mjs',
        import: './dist/index.mjs',
        require: './dist/index.cjs',
      },
      './package.json': './package.json',
    },
    files: ['dist', 'README.md', 'LICENSE'],
    sideEffects: false,
    dependencies: source.dependencies,
  };
}

async function bundle(pkgDir, target, nodeEsmBanner) {
  const common = {
    entryPoints: [join(pkgDir, 'src/index.ts')],
    bundle: true,
    // Dependencies (msgpackr, ws, @chat/protocol) stay imports: npm installs them.
    packages: 'external',
    target: 'es2022',
    sourcemap: false,
    logLevel: 'warning',
  };
  await Promise.all([
    build({
      ...common,
      platform: 'node',
      format: 'esm',
      outfile: join(target, 'dist/index.mjs'),
      banner: { js: nodeEsmBanner },
    }),
    build({ ...common, platform: 'node', format: 'cjs', outfile: join(target, 'dist/index.cjs') }),
    // platform 'browser' applies the package's `browser` map (protocol: token.browser.ts).
    build({
      ...common,
      platform: 'browser',
      format: 'esm',
      outfile: join(target, 'dist/browser.mjs'),
    }),
  ]);
}

const types = join(out, '.types');
for (const { dir } of packages) rmSync(join(out, dir), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
if (tarballDir !== undefined) mkdirSync(tarballDir, { recursive: true });
run(join(root, 'node_modules/.bin/tsc'), [
  '-p',
  'packages/client/tsconfig.build.json',
  '--outDir',
  types,
]);

const tarballs = {};
for (const { dir, nodeEsmBanner } of packages) {
  const pkgDir = join(root, 'packages', dir);
  const target = join(out, dir);
  cpSync(join(types, dir, 'src'), join(target, 'dist'), { recursive: true });
  await bundle(pkgDir, target, nodeEsmBanner);
  const source = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(manifest(source), null, 2)}\n`);
  cpSync(join(pkgDir, 'README.md'), join(target, 'README.md'));
  cpSync(join(root, 'LICENSE'), join(target, 'LICENSE'));
  if (tarballDir !== undefined) {
    const packed = JSON.parse(
      run('npm', ['pack', '--json', '--pack-destination', tarballDir], target),
    );
    tarballs[dir] = join(tarballDir, packed[0].filename);
  }
}
rmSync(types, { recursive: true, force: true });
if (args.out === undefined) rmSync(out, { recursive: true, force: true });
if (tarballDir !== undefined) process.stdout.write(`${JSON.stringify(tarballs)}\n`);
