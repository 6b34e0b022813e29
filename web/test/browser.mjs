// Debian's chromium driven by playwright-core (no browser download), with a fresh profile,
// every request logged, and every request to another origin than the test server's blocked.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags chromium reaches out on its own (updates, sync,
// safe browsing); this machine's closed network refuses those connections.
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * A browser context allowed to reach `origin` only. Resolves to {context, requests, foreign,
 * close()}: `requests` every URL the pages asked for, `foreign` those not of `origin` (blocked).
 */
export async function launch(origin, options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'verex-web-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: options.viewport ?? { width: 1100, height: 900 },
    serviceWorkers: 'block',
  });
  const requests = [];
  const foreign = [];
  context.on('request', (request) => requests.push(request.url()));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`)) return route.continue();
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  return {
    context,
    requests,
    foreign,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
