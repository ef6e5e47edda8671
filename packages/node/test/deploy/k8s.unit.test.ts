/**
 * deploy/k8s against the code: the manifests parse, node ids come from pod names, probes hit
 * endpoints the servers have on the ports they listen on, SIGTERM has time to drain, and secret
 * values reach workloads only through Secret references.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  REPO_ROOT,
  allSourceText,
  isReadInSources,
  parseYaml,
  parseYamlDocuments,
  repoFile,
} from './manifest-kit';

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are deep untyped trees */
type K8sObject = {
  kind: string;
  metadata: { name: string };
  spec?: any;
  data?: any;
  stringData?: any;
};

/** The Secret is a template the operator fills; kustomize never applies it. */
const SECRET_TEMPLATE = 'secret.template.yaml';
const files = readdirSync(join(REPO_ROOT, 'deploy/k8s')).filter((f) => f.endsWith('.yaml'));
const objects: K8sObject[] = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => parseYamlDocuments(`deploy/k8s/${f}`) as K8sObject[]);
const find = (kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return found;
};
const config = find('ConfigMap', 'chat-config').data as Record<string, string>;
const secret = find('Secret', 'chat-secrets');
const secretKeys = Object.keys({ ...secret.stringData, ...secret.data });
const nodes = find('StatefulSet', 'node');
const registry = find('Deployment', 'registry');
const nodeServer = repoFile('packages/node/src/server.ts');
const nodeInternalServer = repoFile('packages/node/src/internal-server.ts');
const registryServer = repoFile('packages/registry/src/server.ts');
const sources = allSourceText();

function container(workload: K8sObject): any {
  return workload.spec.template.spec.containers[0];
}

/** The containerPort a probe's port (name or number) points at. */
function probePort(c: any, probe: any): number {
  const port = probe.httpGet.port;
  if (typeof port === 'number') return port;
  const named = (c.ports as any[]).find((p) => p.name === port);
  if (named === undefined) throw new Error(`probe port ${port} is not a container port`);
  return named.containerPort as number;
}

describe('deploy/k8s', () => {
  it('parses, and kustomization lists every manifest', () => {
    const kustomization = parseYaml('deploy/k8s/kustomization.yaml');
    expect([...(kustomization.resources as string[])].sort()).toEqual(
      files.filter((f) => f !== 'kustomization.yaml' && f !== SECRET_TEMPLATE).sort(),
    );
    for (const object of objects) {
      expect(typeof object.kind).toBe('string');
      expect(typeof object.metadata.name).toBe('string');
    }
    expect(objects.map((o) => o.kind)).toEqual(
      expect.arrayContaining([
        'StatefulSet',
        'Deployment',
        'Service',
        'PodDisruptionBudget',
        'ConfigMap',
        'Secret',
      ]),
    );
  });

  it('takes each chat node id from its pod name, under a headless service', () => {
    const c = container(nodes);
    const nodeId = (c.env as any[]).find((e) => e.name === 'CHAT_NODE_ID');
    expect(nodeId.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(repoFile('packages/node/src/config.ts')).toContain("r.string('CHAT_NODE_ID'");
    const service = find('Service', nodes.spec.serviceName);
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.selector).toEqual(nodes.spec.selector.matchLabels);
    // Pod names (<statefulset>-<ordinal>) are valid node ids.
    expect(`${nodes.metadata.name}-12`).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    // Advertised addresses use the pod's stable DNS name under that service.
    const value = (name: string): string => (c.env as any[]).find((e) => e.name === name).value;
    expect(value('CHAT_RPC_ADVERTISE')).toBe(
      `$(CHAT_NODE_ID).${service.metadata.name}.$(POD_NAMESPACE).svc.cluster.local:${config.CHAT_RPC_PORT}`,
    );
    expect(new URL(value('CHAT_PUBLIC_URL').replace(/\$\((\w+)\)/g, 'x')).port).toBe(
      config.CHAT_PORT,
    );
  });

  it('probes real endpoints on the ports the servers listen on', () => {
    expect(nodeServer).toMatch(/app\.get\('\/healthz'/);
    expect(nodeServer).toMatch(/app\.get\('\/readyz'/);
    expect(nodeServer).not.toMatch(/'\/metrics'/);
    expect(nodeInternalServer).toMatch(/app\.get\('\/metrics'/);
    expect(registryServer).toMatch(/case '\/healthz'/);
    expect(registryServer).toMatch(/case '\/readyz'/);
    expect(registryServer).toMatch(/'\/metrics'/);
    // Probes on the public port; Prometheus scrapes the internal listener.
    const cases: [K8sObject, string, string][] = [
      [nodes, config.CHAT_PORT!, config.CHAT_INTERNAL_PORT!],
      [registry, config.CHAT_REGISTRY_PORT!, config.CHAT_REGISTRY_INTERNAL_PORT!],
    ];
    for (const [workload, port, internalPort] of cases) {
      const c = container(workload);
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(Boolean))
        expect(probePort(c, probe)).toBe(Number(port));
      const annotations = workload.spec.template.metadata.annotations;
      expect(annotations['prometheus.io/port']).toBe(internalPort);
      expect(c.ports.map((p: any) => p.containerPort)).toContain(Number(internalPort));
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    }
    expect(container(nodes).ports.map((p: any) => p.containerPort)).toContain(
      Number(config.CHAT_RPC_PORT),
    );
  });

  it('gives SIGTERM time to drain: grace period > preStop + CHAT_SHUTDOWN_TIMEOUT_MS', () => {
    const pod = nodes.spec.template.spec;
    const preStop = container(nodes).lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const shutdownSec = Number(config.CHAT_SHUTDOWN_TIMEOUT_MS) / 1000;
    expect(shutdownSec).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownSec + Number(preStop[1]));
  });

  it('references secrets, never inlines them, and every variable set is read by the code', () => {
    expect(secretKeys.sort()).toEqual(
      [
        'CHAT_AUTH_SECRET',
        'CHAT_CLUSTER_SECRET',
        'CHAT_S3_ACCESS_KEY',
        'CHAT_S3_SECRET_KEY',
        'DATABASE_URL',
      ].sort(),
    );
    // No value ships, not even a placeholder.
    for (const value of Object.values(secret.stringData ?? {})) expect(value).toBe('');
    expect(secret.data).toBeUndefined();
    for (const key of secretKeys) expect(Object.keys(config)).not.toContain(key);
    const workloads = objects.filter((o) => ['StatefulSet', 'Deployment', 'Job'].includes(o.kind));
    for (const workload of workloads) {
      for (const c of workload.spec.template.spec.containers as any[]) {
        for (const e of (c.env ?? []) as any[]) {
          // A secret's name set with a literal value would inline it.
          expect({ name: e.name, inlined: secretKeys.includes(e.name) && 'value' in e }).toEqual({
            name: e.name,
            inlined: false,
          });
          if (e.valueFrom?.secretKeyRef)
            expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
        }
        for (const from of (c.envFrom ?? []) as any[]) {
          if (from.secretRef) expect(from.secretRef.name).toBe(secret.metadata.name);
          if (from.configMapRef) expect(from.configMapRef.name).toBe('chat-config');
        }
      }
    }
    const nodeEnvFrom = container(nodes).envFrom as any[];
    expect(nodeEnvFrom).toContainEqual({ secretRef: { name: 'chat-secrets' } });
    // The registry needs no secret.
    expect(JSON.stringify(container(registry))).not.toContain('chat-secrets');
    const variables = [
      ...Object.keys(config),
      ...secretKeys,
      ...(container(nodes).env as any[]).map((e) => e.name as string),
    ].filter((name) => /^(CHAT_|DATABASE_URL$|NODE_ENV$)/.test(name));
    expect(variables.filter((name) => !isReadInSources(sources, name))).toEqual([]);
  });

  it('keeps chat node disruptions to one at a time, and the registry available', () => {
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    const forNodes = pdbs.find(
      (p) =>
        JSON.stringify(p.spec.selector.matchLabels) ===
        JSON.stringify(nodes.spec.selector.matchLabels),
    );
    expect(forNodes?.spec.maxUnavailable).toBe(1);
    const forRegistry = pdbs.find(
      (p) =>
        JSON.stringify(p.spec.selector.matchLabels) ===
        JSON.stringify(registry.spec.selector.matchLabels),
    );
    expect(forRegistry?.spec.minAvailable).toBe(1);
    const registryService = find('Service', 'registry');
    expect(registryService.spec.selector).toEqual(registry.spec.selector.matchLabels);
  });

  it('initialises the ring with the StatefulSet pod names', () => {
    const job = find('Job', 'ring-init');
    const script = (container(job).command as string[]).join(' ');
    const names = Array.from(
      { length: nodes.spec.replicas as number },
      (_, i) => `${nodes.metadata.name}-${i}`,
    );
    expect(script).toContain(`chatctl scale-out ${names.join(' ')}`);
  });

  it('applies no Secret: the operator creates chat-secrets (the template says how)', () => {
    const kustomization = parseYaml('deploy/k8s/kustomization.yaml');
    expect(kustomization.resources).not.toContain(SECRET_TEMPLATE);
    const applied = files.filter((f) => (kustomization.resources as string[]).includes(f));
    for (const f of applied)
      for (const o of parseYamlDocuments(`deploy/k8s/${f}`) as K8sObject[])
        expect({ file: f, kind: o.kind }).not.toEqual({ file: f, kind: 'Secret' });
    const template = repoFile(`deploy/k8s/${SECRET_TEMPLATE}`);
    expect(template).toContain('kubectl create secret generic chat-secrets');
    for (const key of secretKeys) expect(template).toContain(`--from-literal=${key}=`);
    for (const f of files) expect(repoFile(`deploy/k8s/${f}`)).not.toMatch(/change-me/i);
  });
});
