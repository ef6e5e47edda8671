/**
 * Helpers for the deployment tests: the repository's manifests parsed with `yaml`, and the
 * sources of packages/*\/src, to check that what the manifests set is what the code reads.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

export const REPO_ROOT = join(__dirname, '../../../..');

export function repoFile(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

/** One YAML document (anchors and `<<` merge keys resolved). */
export function parseYaml(path: string): Record<string, unknown> {
  return parse(repoFile(path), { merge: true }) as Record<string, unknown>;
}

/** Every document of a multi-document YAML file; throws on a syntax error. */
export function parseYamlDocuments(path: string): Record<string, unknown>[] {
  return parseAllDocuments(repoFile(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    return doc.toJS({ merge: true } as never) as Record<string, unknown>;
  });
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The text of every packages/*\/src/**.ts, joined (read once per test file). */
export function allSourceText(): string {
  const packages = join(REPO_ROOT, 'packages');
  return readdirSync(packages)
    .map((pkg) => join(packages, pkg, 'src'))
    .filter((dir) => {
      try {
        return statSync(dir).isDirectory();
      } catch {
        return false;
      }
    })
    .flatMap(tsFiles)
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
}

/** True when the sources read the variable: `'NAME'`, `"NAME"` or `env.NAME`, not just a comment. */
export function isReadInSources(sources: string, name: string): boolean {
  return new RegExp(`(['"]${name}['"])|(\\.${name}\\b)`).test(sources);
}

/** `${VAR:-default}` -> default, as Compose interpolates it with VAR unset. */
export function interpolateDefaults(value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
}

export function asRecord(value: unknown): Record<string, unknown> {
  return (value ?? {}) as Record<string, unknown>;
}
