/**
 * Headless Chromium for browser tests: Debian's `chromium` package (installed by
 * `scripts/ensure-chromium.sh`, which the test command runs) driven by playwright-core. No
 * browser is downloaded. Set CHROMIUM_PATH to use another Chromium binary.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { REPO_ROOT } from './service-process';

const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** The Chromium binary to drive; throws with the install hint when there is none. */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH || DEFAULT_CHROMIUM;
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: run scripts/ensure-chromium.sh (npm test does) or set CHROMIUM_PATH`,
    );
  }
  return path;
}

export interface BrowserOptions {
  /**
   * Server certificates (PEM) the browser accepts although no CA it knows signed them: the TLS
   * edge's, in secure tests. Pinned by public key, so any other unknown certificate still fails
   * (unlike ignoring certificate errors altogether).
   */
  readonly trustCertificates?: readonly string[];
}

/** Chromium's pin of a certificate: base64 SHA-256 of its SubjectPublicKeyInfo. */
function spkiPin(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/**
 * Starts headless Chromium; close it in the test's teardown. Without a display: `headless` needs
 * none, and the sandbox is off because CI runs as root.
 */
export async function launchBrowser(options: BrowserOptions = {}): Promise<Browser> {
  // Loaded here, not at the top: playwright-core takes about 2 s to load, which every test file
  // importing @chat/testkit would pay, browser test or not.
  const { chromium } = await import('playwright-core');
  const pins = (options.trustCertificates ?? []).map(spkiPin);
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    chromiumSandbox: false,
    args: pins.length > 0 ? [`--ignore-certificate-errors-spki-list=${pins.join(',')}`] : [],
    // A shared, busy machine: give a slow start time before failing.
    timeout: 60_000,
  });
}

/**
 * Where test runs save screenshots: SCREENSHOT_DIR, else `.tmp/screenshots` in the repository
 * (ignored by git). The README's pictures are made with `SCREENSHOT_DIR=docs/screenshots`.
 */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  const dir = process.env.SCREENSHOT_DIR || join(REPO_ROOT, '.tmp', 'screenshots');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
