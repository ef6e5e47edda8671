import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkRuntime } from '../src/runtime';

describe('checkRuntime: the Node.js lines the chat node runs on', () => {
  it('accepts Node.js 20, the line the pinned uWebSockets.js loads natively on', () => {
    expect(checkRuntime({ node: '20.19.5', modules: '115' })).toBeUndefined();
    expect(checkRuntime({ node: '20.0.0', modules: '115' })).toBeUndefined();
  });

  it.each([
    ['22.12.0', '127'],
    ['24.1.0', '137'],
  ])('refuses Node.js %s (ABI %s): no binary for it in the pinned build', (node, modules) => {
    const problem = checkRuntime({ node, modules });
    expect(problem).toContain(`Node.js ${node} (ABI ${modules}) is not supported`);
    expect(problem).toContain('runs on Node.js 20');
    expect(problem).toContain('115 (20)');
    expect(problem).toContain('README "Node.js support"');
  });

  it('refuses lines past end of life, binary or not', () => {
    expect(checkRuntime({ node: '18.20.4', modules: '108' })).toMatch(
      /^Node\.js 18\.20\.4 \(ABI 108\) is not supported: the chat node runs on Node\.js 20/,
    );
    expect(checkRuntime({ node: '16.20.2', modules: '93' })).toMatch(/is not supported/);
  });

  it('refuses a Node.js 20 build with another ABI (the binary would not load)', () => {
    expect(checkRuntime({ node: '20.5.0', modules: '120' })).toMatch(/should have ABI 115/);
  });

  it("is checked by the node's entry point before anything else is imported", () => {
    const main = readFileSync(join(__dirname, '../src/main.ts'), 'utf8');
    const firstImport = /^import .*$/m.exec(main)?.[0];
    expect(firstImport).toBe("import './runtime-guard';");
  });
});
