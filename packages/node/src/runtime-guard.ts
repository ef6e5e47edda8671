/**
 * Imported first by the node's entry point (main.ts): stops an unsupported Node.js with a clear
 * message and exit code 3 before uWebSockets.js is loaded (which would warn and fall back).
 */
import { checkRuntime } from './runtime';

const problem = checkRuntime(process.versions);
if (problem !== undefined) {
  process.stderr.write(`unsupported runtime: ${problem}\n`);
  process.exit(3);
}
