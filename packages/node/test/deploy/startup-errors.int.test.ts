/**
 * A bad configuration stops the node at start with one line on stderr naming the problem, and
 * a non-zero exit: missing secrets in production, malformed URLs, a port already in use.
 * Secrets never show up in the node's log.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { TestDatabase } from '@chat/testkit';
import { REPO_ROOT, createTestDatabase } from '@chat/testkit';

interface Outcome {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

/** Runs the node entry point with exactly `env` (plus PATH) until it exits. */
function runNode(env: Record<string, string>, timeoutMs = 60_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'packages/node/src/main.ts')],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

const SECRET = 'a-real-secret-4711-of-at-least-32-bytes';
const DB_PASSWORD_URL = 'postgres://chat:db-password-0815@127.0.0.1:1/chat';

describe('node start with a bad configuration', () => {
  it('refuses production without CHAT_AUTH_SECRET', async () => {
    const out = await runNode({ NODE_ENV: 'production', DATABASE_URL: DB_PASSWORD_URL });
    expect(out.code).toBe(2);
    expect(oneLine(out.stderr)).toBe(
      'configuration error: CHAT_AUTH_SECRET is required when NODE_ENV=production (or CHAT_AUTH_KEYS, for tokens with a kid)',
    );
  });

  it('refuses production without CHAT_CLUSTER_SECRET when clustered', async () => {
    const out = await runNode({
      NODE_ENV: 'production',
      DATABASE_URL: DB_PASSWORD_URL,
      CHAT_AUTH_SECRET: SECRET,
      CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379',
    });
    expect(out.code).toBe(2);
    expect(oneLine(out.stderr)).toMatch(/CHAT_CLUSTER_SECRET is required/);
  });

  it('names a malformed etcd endpoint', async () => {
    const out = await runNode({
      DATABASE_URL: DB_PASSWORD_URL,
      CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379,etcd-2:2379',
    });
    expect(out.code).toBe(2);
    expect(oneLine(out.stderr)).toBe(
      'configuration error: CHAT_ETCD_ENDPOINTS must be comma-separated http:// or https:// URLs, got "etcd-2:2379"',
    );
  });

  it('names a DATABASE_URL that is not a postgres URL, without echoing it', async () => {
    const out = await runNode({ DATABASE_URL: 'mysql://root:db-password-0815@db/chat' });
    expect(out.code).toBe(2);
    const line = oneLine(out.stderr);
    expect(line).toMatch(/^configuration error: DATABASE_URL must be a postgres:\/\//);
    expect(line).not.toContain('db-password-0815');
  });

  describe('with a database', () => {
    let db: TestDatabase;
    let blocker: Server;
    let busyPort = 0;
    beforeAll(async () => {
      db = await createTestDatabase('startup');
      blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      busyPort = (blocker.address() as { port: number }).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => blocker.close(resolve));
      await db.drop();
    });

    it('says which port is in use, in one line', async () => {
      const out = await runNode({
        DATABASE_URL: db.url,
        CHAT_AUTH_SECRET: SECRET,
        CHAT_HOST: '127.0.0.1',
        CHAT_PORT: String(busyPort),
        CHAT_LISTEN_RETRY_MS: '300',
      });
      expect(out.code).toBe(1);
      expect(oneLine(out.stderr)).toBe(
        `chat node failed to start: cannot listen on 127.0.0.1:${busyPort}: the port is in use or the address is not available`,
      );
      // What it logged before giving up shows its configuration, without secrets.
      expect(out.stdout).toContain('"msg":"starting"');
      expect(out.stdout).toContain('[redacted]');
      expect(out.stdout).not.toContain(SECRET);
      const password = new URL(db.url).password;
      if (password !== '') expect(out.stdout).not.toContain(password);
    });
  });
});
