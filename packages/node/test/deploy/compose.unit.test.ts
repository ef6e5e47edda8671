/**
 * docker-compose.yml against the code: every variable it sets is read somewhere, ports line up
 * (published, health checks, advertised URLs), the image is the one deploy/Dockerfile builds,
 * and `docker compose config` accepts it where a Docker client with Compose exists.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  REPO_ROOT,
  allSourceText,
  asRecord,
  interpolateDefaults,
  isReadInSources,
  parseYaml,
  repoFile,
} from './manifest-kit';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
}

const compose = parseYaml('docker-compose.yml');
const services = asRecord(compose.services) as Record<string, Service>;
const sources = allSourceText();
const env = (s: Service): Record<string, string> =>
  Object.fromEntries(
    Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolateDefaults(String(v))]),
  );
const chatNodes = Object.entries(services).filter(([name]) => /^node-\d+$/.test(name));
const APP_IMAGE = 'chat-cluster:dev';
/** Variables the operator must set: Compose has no default for them. */
const REQUIRED_SECRETS = [
  'CHAT_AUTH_SECRET',
  'CHAT_CLUSTER_SECRET',
  'POSTGRES_PASSWORD',
  'S3_SECRET_KEY',
];

function seconds(duration: string): number {
  const match = /^(\d+)(s|m)$/.exec(duration);
  if (match === null) throw new Error(`unsupported duration ${duration}`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

function portOfUrl(url: string): number {
  return Number(new URL(url).port);
}

describe('docker-compose.yml', () => {
  const composeCheck = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  const hasCompose = composeCheck.status === 0;
  if (!hasCompose) {
    console.log(
      'SKIPPED `docker compose config`: no Docker client with the Compose plugin here ' +
        `(${(composeCheck.stderr || String(composeCheck.error ?? 'not found')).trim().split('\n')[0]})`,
    );
  }
  (hasCompose ? it : it.skip)('is accepted by `docker compose config`', () => {
    const result = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      // The secrets have no defaults: Compose refuses the file without them.
      env: {
        ...process.env,
        ...Object.fromEntries(REQUIRED_SECRETS.map((v) => [v, 'x'.repeat(40)])),
      },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('runs the infrastructure, the registry, three nodes (and node-4 on demand) and one-shots', () => {
    for (const name of ['etcd', 'postgres', 's3', 'registry', 'ring-init']) {
      expect(services[name]).toBeDefined();
    }
    expect(chatNodes.map(([name]) => name)).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
    expect(services['node-4']!.profiles).toEqual(['scale-out']);
    expect(services.postgres!.image).toMatch(/^postgres:16/);
    expect(services.etcd!.image).toMatch(/coreos\/etcd|bitnami\/etcd/);
    expect(services.etcd!.command?.[0]).toContain('etcd');
    expect(asRecord(compose.volumes)).toEqual(
      expect.objectContaining({ 'etcd-data': null, 'pg-data': null, 's3-data': null }),
    );
  });

  it('builds every app service from deploy/Dockerfile, whose entrypoint knows each command', () => {
    const entrypoint = repoFile('deploy/docker-entrypoint.sh');
    for (const [name, service] of Object.entries(services)) {
      if (service.image !== APP_IMAGE) continue;
      expect({ name, build: service.build }).toEqual({
        name,
        build: { context: '.', dockerfile: 'deploy/Dockerfile' },
      });
      // The program the image's entrypoint is asked to run (a shell entrypoint runs its own).
      const entry = service.entrypoint;
      const program =
        entry === undefined
          ? service.command?.[0]
          : Array.isArray(entry) && entry[0] === 'chat-entrypoint'
            ? entry[1]
            : undefined;
      if (program !== undefined) {
        expect({ name, handled: entrypoint.includes(`  ${program})`) }).toEqual({
          name,
          handled: true,
        });
      } else {
        expect({ name, entry: JSON.stringify(entry) }).toEqual({
          name,
          entry: expect.stringContaining('chatctl') as unknown,
        });
      }
    }
    expect(services.registry!.image).toBe(APP_IMAGE);
    for (const [, node] of chatNodes) expect(node.image).toBe(APP_IMAGE);
    // The script and the scripts it runs exist.
    for (const script of [
      'packages/node/src/main.ts',
      'packages/registry/src/main.ts',
      'packages/cli/bin/chatctl',
      'packages/store/src/cli.ts',
    ]) {
      expect(entrypoint).toContain(script);
      expect(existsSync(join(REPO_ROOT, script))).toBe(true);
    }
  });

  it('deploy/Dockerfile installs from the lockfile and copies every package manifest', () => {
    const dockerfile = repoFile('deploy/Dockerfile');
    expect(dockerfile).toMatch(/FROM \$\{NODE_IMAGE\} AS runtime/);
    expect(dockerfile).toMatch(/ARG NODE_IMAGE=node:20-bookworm-slim/);
    expect(dockerfile).toMatch(/npm ci /);
    expect(dockerfile).toMatch(/^USER node$/m);
    for (const pkg of readdirSync(join(REPO_ROOT, 'packages'))) {
      if (!existsSync(join(REPO_ROOT, 'packages', pkg, 'package.json'))) continue;
      expect(dockerfile).toContain(`COPY packages/${pkg}/package.json packages/${pkg}/`);
    }
  });

  it('sets only CHAT_* variables that the code reads', () => {
    const unread: string[] = [];
    for (const [name, service] of Object.entries(services)) {
      for (const variable of Object.keys(env(service))) {
        if (!/^(CHAT_|DATABASE_URL$|NODE_ENV$)/.test(variable)) continue;
        if (!isReadInSources(sources, variable)) unread.push(`${name}: ${variable}`);
      }
    }
    expect(unread).toEqual([]);
  });

  it('gives each node its id, public URL on its published port, and RPC address on the network', () => {
    for (const [name, node] of chatNodes) {
      const vars = env(node);
      expect(vars.CHAT_NODE_ID).toBe(name);
      const [hostPort, containerPort] = (node.ports?.[0] ?? '').split(':').map(Number);
      expect(containerPort).toBe(Number(vars.CHAT_PORT));
      expect(portOfUrl(vars.CHAT_PUBLIC_URL!)).toBe(hostPort);
      expect(new URL(vars.CHAT_PUBLIC_URL!).hostname).toBe('localhost');
      expect(vars.CHAT_RPC_ADVERTISE).toBe(`${name}:${vars.CHAT_RPC_PORT}`);
      expect(vars.CHAT_HOST).toBe('0.0.0.0');
      // Secrets come from the operator's environment, with no default (see the test below).
      for (const secret of ['CHAT_AUTH_SECRET', 'CHAT_CLUSTER_SECRET', 'CHAT_S3_SECRET_KEY']) {
        expect(vars[secret]).toMatch(/^\$\{[A-Z0-9_]+:\?set [A-Z0-9_]+ to a random /);
      }
      expect(vars.NODE_ENV).toBe('production');
      for (const s3 of [
        'CHAT_S3_ENDPOINT',
        'CHAT_S3_ACCESS_KEY',
        'CHAT_S3_BUCKET',
        'CHAT_S3_REGION',
      ])
        expect(vars[s3]).toBeTruthy();
      // The required password stands in for what the operator sets.
      const databaseUrl = vars.DATABASE_URL!.replace(/\$\{POSTGRES_PASSWORD:\?[^}]*\}/, 'pw');
      expect(new URL(databaseUrl).hostname).toBe('postgres');
      expect(new URL(vars.CHAT_ETCD_ENDPOINTS!).hostname).toBe('etcd');
      expect(new URL(vars.CHAT_S3_ENDPOINT!).hostname).toBe('s3');
      // SIGTERM drains: Compose must wait longer than the node's shutdown timeout.
      expect(seconds(node.stop_grace_period!)).toBeGreaterThan(
        Number(vars.CHAT_SHUTDOWN_TIMEOUT_MS) / 1000,
      );
    }
  });

  it('health checks probe /readyz on the port each service listens on', () => {
    const check = (service: Service, port: string): void => {
      const test = service.healthcheck?.test.join(' ') ?? '';
      expect(test).toContain(`http://127.0.0.1:${port}/readyz`);
    };
    for (const [, node] of chatNodes) check(node, env(node).CHAT_PORT!);
    const registry = services.registry!;
    check(registry, env(registry).CHAT_REGISTRY_PORT!);
    expect(registry.ports).toEqual([
      `${env(registry).CHAT_REGISTRY_PORT}:${env(registry).CHAT_REGISTRY_PORT}`,
    ]);
    expect(sources).toMatch(/app\.get\('\/readyz'/);
    expect(sources).toMatch(/case '\/readyz'/);
    for (const name of ['etcd', 'postgres', 's3'])
      expect(services[name]!.healthcheck).toBeDefined();
  });

  it('writes the first ring after the nodes are healthy, with a chatctl command that can', () => {
    const ringInit = services['ring-init']!;
    const script = (ringInit.entrypoint as string[]).join(' ');
    expect(script).toContain('chatctl scale-out node-1 node-2 node-3');
    for (const node of ['node-1', 'node-2', 'node-3'])
      expect(ringInit.depends_on?.[node]?.condition).toBe('service_healthy');
    // `scale-out` on an empty ring writes the first ring (packages/cli/src/plan.ts).
    expect(repoFile('packages/cli/src/plan.ts')).toContain('writing the first one');
  });

  it('ships no secret: each one is required (${VAR:?message}), none has a change-me default', () => {
    const text = repoFile('docker-compose.yml');
    expect(text).not.toMatch(/change-me/i);
    for (const variable of REQUIRED_SECRETS) {
      const uses = [...text.matchAll(new RegExp(`\\$\\{${variable}(:?[-?=+])?([^}]*)\\}`, 'g'))];
      expect({ variable, used: uses.length > 0 }).toEqual({ variable, used: true });
      for (const use of uses) {
        expect({ variable, form: use[1] }).toEqual({ variable, form: ':?' });
        expect(use[2]).toMatch(new RegExp(`^set ${variable} to a random`));
      }
    }
    // Every place a secret lands is filled from one of them, never a literal.
    const secretSettings = [
      'CHAT_AUTH_SECRET',
      'CHAT_CLUSTER_SECRET',
      'CHAT_S3_SECRET_KEY',
      'POSTGRES_PASSWORD',
      'PGPASSWORD',
    ];
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!secretSettings.includes(key)) continue;
        expect({ name, key, value: String(value) }).toEqual({
          name,
          key,
          value: expect.stringMatching(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/) as unknown,
        });
      }
    }
    expect(env(chatNodes[0]![1]).DATABASE_URL).toMatch(
      /^postgres:\/\/chat:\$\{POSTGRES_PASSWORD:\?/,
    );
  });
});

describe('docker-compose.yml images', () => {
  const images = (): [string, string][] => {
    const anchors = [
      ...repoFile('docker-compose.yml').matchAll(/^x-[a-z-]+: &[a-z-]+ (\S+:\S+)$/gm),
    ];
    return [
      ...Object.entries(services).flatMap(([name, s]): [string, string][] =>
        typeof s.image === 'string' ? [[name, s.image]] : [],
      ),
      ...anchors.map((m): [string, string] => ['(anchor)', m[1]!]),
    ];
  };

  it('pins every image to a version tag: none is :latest or untagged', () => {
    expect(images().length).toBeGreaterThan(5);
    for (const [name, image] of images()) {
      if (image === APP_IMAGE) continue; // built here, from deploy/Dockerfile
      const tag = /^[^@]+:([^/:@]+)(@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
      expect({ name, image, tag }).toEqual({ name, image, tag: expect.stringMatching(/\d/) });
      expect({ name, image, latest: /latest/i.test(tag ?? '') }).toEqual({
        name,
        image,
        latest: false,
      });
    }
  });

  it('names no MinIO image (gone from Docker Hub) and needs no mc: the nodes create the bucket', () => {
    for (const [name, image] of images())
      expect({ name, image }).not.toEqual({ name, image: expect.stringMatching(/minio/i) });
    expect(repoFile('docker-compose.yml')).not.toMatch(/\bmc (mb|alias)\b/);
    const s3 = services.s3!;
    expect(s3.image).toMatch(/^chrislusf\/seaweedfs:\d+\.\d+$/);
    for (const [, node] of chatNodes)
      expect(node.depends_on?.s3?.condition).toBe('service_healthy');
    // MediaService.start() makes the bucket through the S3 API (CreateBucket), racing nodes welcome.
    expect(repoFile('packages/media/src/minio-store.ts')).toMatch(/makeBucket\(this\.bucket/);
    expect(repoFile('packages/media/src/minio-store.ts')).toContain("'BucketAlreadyOwnedByYou'");
  });

  it("gives the S3 gateway the nodes' key pair, on the port their endpoint names", () => {
    const identities = asRecord(asRecord(compose.configs)['s3-identities']).content as string;
    const node = env(chatNodes[0]![1]);
    const parsed = JSON.parse(interpolateDefaults(identities)) as {
      identities: { credentials: { accessKey: string; secretKey: string }[]; actions: string[] }[];
    };
    expect(parsed.identities[0]!.credentials[0]!.accessKey).toBe(node.CHAT_S3_ACCESS_KEY);
    expect(parsed.identities[0]!.actions).toEqual(
      expect.arrayContaining(['Admin', 'Read', 'Write', 'List']),
    );
    expect(identities).toContain('${S3_SECRET_KEY:?');
    expect(services.s3!.command).toContain(`-s3.port=${portOfUrl(node.CHAT_S3_ENDPOINT!)}`);
    expect(services.s3!.ports).toContain(`${portOfUrl(node.CHAT_S3_ENDPOINT!)}:9000`);
  });
});
