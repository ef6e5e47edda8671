/**
 * The SDK as a team installs it: the packed tarballs of @chat/protocol and @chat/client go
 * into an empty project (npm install from the .tgz files; dependencies from the npm cache when
 * there, else the registry), and the example app (examples/cli-chat, an ES module) talks to a
 * real node; a CommonJS program of the same project, `require`-ing the SDK, receives what it
 * sent.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { SingleNode } from '@chat/testkit';
import { startSingleNode, testToken } from '@chat/testkit';
import type { SdkBuild } from './sdk-build';
import { buildSdk, REPO_ROOT, run } from './sdk-build';

let sdk: SdkBuild;
let project: string;
let harness: SingleNode;

beforeAll(async () => {
  sdk = await buildSdk({ pack: true });
  project = mkdtempSync(join(tmpdir(), 'chat-sdk-consumer-'));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'sdk-consumer', version: '1.0.0', private: true }),
  );
  const { protocol, client } = sdk.tarballs!;
  await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'].concat([
      protocol,
      client,
      'ws@^8.18.0',
    ]),
    { cwd: project, timeout: 180_000 },
  );
  for (const file of ['chat.mjs', 'file-outbox.mjs'])
    copyFileSync(join(REPO_ROOT, 'examples/cli-chat', file), join(project, file));
  harness = await startSingleNode({ nodeId: 'sdk-node' });
}, 300_000);

afterAll(async () => {
  await harness?.close();
  if (project !== undefined) rmSync(project, { recursive: true, force: true });
  sdk?.remove();
});

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program of the consumer project to its end with `input` on stdin. */
function runInProject(argv: string[], input: string, timeoutMs = 60_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: project, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} ran over ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** bob's side, in CommonJS: waits for alice's message and prints it with what it checked. */
const BOB_CJS = `
const WebSocket = require('ws');
const { ChatClient, ChatError, CloseCode, ConnectionError } = require('@chat/client');
const [url, token, expected] = process.argv.slice(2);
const client = new ChatClient({ url, token, WebSocket });
const deadline = setTimeout(() => { console.error('no message'); process.exit(1); }, 30000);
let received = false;
client.on('event', (evt) => {
  if (evt.kind !== 'message' || evt.body !== expected) return;
  received = true;
  clearTimeout(deadline);
  console.log(JSON.stringify({
    from: evt.from,
    body: evt.body,
    exports: [typeof ChatError, typeof ConnectionError, CloseCode.MOVED],
  }));
  void client.close();
});
// The message may come with the first sync, before connect() resolves: closing rejects it then.
client.connect().catch((err) => { if (!received) { console.error(err.message); process.exit(1); } });
`;

it('installs from the tarballs; the example sends (import) and a require program receives', async () => {
  const url = harness.node.url;
  const body = `hello from the example ${Date.now()}`;
  const alice = await runInProject(
    ['chat.mjs', '--url', url, '--token', testToken('alice', 'cli'), '--to', 'bob'],
    `${body}\n`,
  );
  expect({ code: alice.code, stderr: alice.stderr }).toEqual({
    code: 0,
    stderr: expect.stringMatching(/chat \S+ with bob[\s\S]*sent \S+/),
  });

  // Acknowledged, so no longer in the example's file outbox.
  expect(JSON.parse(readFileSync(join(project, '.cli-chat-outbox-alice.json'), 'utf8'))).toEqual(
    [],
  );

  writeFileSync(join(project, 'bob.cjs'), BOB_CJS);
  const bob = await runInProject(['bob.cjs', url, testToken('bob', 'phone'), body], '');
  expect({ code: bob.code, stderr: bob.stderr }).toEqual({ code: 0, stderr: '' });
  expect(JSON.parse(bob.stdout)).toEqual({
    from: 'alice',
    body,
    exports: ['function', 'function', 4001],
  });

  // A second run of the example finds the chat with bob instead of creating another one.
  const again = await runInProject(
    ['chat.mjs', '--url', url, '--token', testToken('alice', 'cli'), '--to', 'bob'],
    'second\n',
  );
  expect(again.code).toBe(0);
  const chatOf = (stderr: string) => /chat (\S+) with bob/.exec(stderr)?.[1];
  expect(chatOf(again.stderr)).toBe(chatOf(alice.stderr));
});

it('types: an ES module and a CommonJS TypeScript program compile against the declarations', async () => {
  writeFileSync(
    join(project, 'typed.mts'),
    [
      "import { ChatClient, ChatError, CloseCode } from '@chat/client';",
      "import type { ChatClientOptions, EventFrame } from '@chat/client';",
      "const options: ChatClientOptions = { url: 'ws://127.0.0.1:1/ws', token: 't' };",
      'const client = new ChatClient(options);',
      "client.on('event', (e: EventFrame) => (e.kind === 'message' ? e.body : null));",
      'export const codes = [CloseCode.MOVED, ChatError.name];',
    ].join('\n'),
  );
  writeFileSync(
    join(project, 'typed.cts'),
    [
      "import { ChatClient } from '@chat/client';",
      "import type { ConnectionState } from '@chat/client';",
      "const status: ConnectionState['status'] = 'ready';",
      'export = [ChatClient.name, status];',
    ].join('\n'),
  );
  // A wrong use must fail, or the check would pass on declarations that are `any`.
  writeFileSync(
    join(project, 'wrong.mts'),
    "import { ChatClient } from '@chat/client';\nnew ChatClient({ url: 1, token: 't' });\n",
  );
  const tsc = join(REPO_ROOT, 'node_modules/.bin/tsc');
  // As `tsc --init` sets up a project: strict, libraries' own declarations not checked.
  const flags = ['--noEmit', '--strict', '--skipLibCheck', '--module', 'node16'];
  const typeRoots = ['--types', 'node', '--typeRoots', join(REPO_ROOT, 'node_modules/@types')];
  // One run (tsc is slow on a loaded machine): the only errors are those of wrong.mts.
  const output = await run(tsc, [...flags, ...typeRoots, 'typed.mts', 'typed.cts', 'wrong.mts'], {
    cwd: project,
  }).then(
    () => 'compiled',
    (err: { stdout: string }) => err.stdout,
  );
  const errors = output.split('\n').filter((line) => line.includes('error TS'));
  expect(errors).toEqual([expect.stringMatching(/^wrong\.mts\(2,\d+\): error TS2322/)]);
});

it('a browser bundle of the installed SDK takes the browser builds, without ws or Node built-ins', async () => {
  writeFileSync(
    join(project, 'page.mjs'),
    "import { ChatClient } from '@chat/client';\nexport const client = new ChatClient({ url: 'wss://chat.example/ws', token: 't' });\n",
  );
  const result = await build({
    absWorkingDir: project,
    entryPoints: ['page.mjs'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  expect(Object.keys(result.metafile.inputs).sort()).toEqual(
    [
      'node_modules/@chat/client/dist/browser.mjs',
      'node_modules/@chat/protocol/dist/browser.mjs',
      ...Object.keys(result.metafile.inputs).filter((f) => f.includes('/msgpackr/')),
      'page.mjs',
    ].sort(),
  );
  expect(result.outputFiles[0]!.text).not.toMatch(/["']node:/);
});
