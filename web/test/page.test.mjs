// The page as a user meets it: a folder that `verex por publish` wrote, served by a static
// server on 127.0.0.1 and opened in Debian's chromium. A user loads, pastes or finds their
// proof and reads "your balances are included"; every must-fail vector is refused in the page
// with its reason; without a mouse, at a phone's width, with no request to any other origin.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './browser.mjs';
import { DEV_ATTEST_KEY, publishCycle } from './cycle.mjs';
import { serve } from './server.mjs';
import { PAGE_FILES, VECTORS, WEB, vectorCases } from './support.mjs';

const PAGE_BUDGET_BYTES = 200 * 1024;
const VERIFY_BUDGET_MS = 50;

let dir;
let cycle;
let server;
let browser;

/** A folder per root file of the vectors: the published page, with that root as root.json. */
function vectorSites(site) {
  const mounts = {};
  for (const rootFile of new Set(vectorCases().map((c) => c.root))) {
    const folder = join(dir, 'vectors', rootFile.replace(/\.json$/, ''));
    for (const name of PAGE_FILES) {
      mkdirSync(dirname(join(folder, name)), { recursive: true });
      copyFileSync(join(site, name), join(folder, name));
    }
    copyFileSync(join(VECTORS, rootFile), join(folder, 'root.json'));
    mounts[`/vectors/${rootFile.replace(/\.json$/, '')}/`] = folder;
  }
  return mounts;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'verex-page-'));
  cycle = publishCycle(dir);
  server = await serve({ '/site/': cycle.site, ...vectorSites(cycle.site) });
  browser = await launch(server.origin);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function openSite(options = {}) {
  const page = await browser.context.newPage();
  if (options.viewport) await page.setViewportSize(options.viewport);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.origin}${options.path ?? '/site/'}`);
  await page.waitForSelector('body[data-cycle=loaded], #load-status.error');
  page.errors = errors;
  return page;
}

const verdict = (page) => page.$eval('#result', (e) => ({ ...e.dataset, heading: e.querySelector('h3').textContent }));

test('the published folder holds the page as web/ has it, under 200 KB', () => {
  let total = 0;
  for (const name of PAGE_FILES) {
    const published = readFileSync(join(cycle.site, name));
    assert.deepEqual(published, readFileSync(join(WEB, name)), `${name} as web/ has it`);
    total += statSync(join(cycle.site, name)).size;
  }
  assert.ok(total < PAGE_BUDGET_BYTES, `the page is ${total} bytes`);
  console.log(`page size: ${total} bytes in ${PAGE_FILES.length} files (${PAGE_FILES.map((n) => `${n} ${statSync(join(cycle.site, n)).size}`).join(', ')})`);
});

test('the page shows the cycle, liabilities against reserves and the stress report', async () => {
  const page = await openSite();
  const facts = await page.$eval('#cycle', (dl) => dl.innerText);
  assert.match(facts, new RegExp(`Journal position \\(seq\\)\\s+${cycle.root.seq}`));
  assert.ok(facts.includes(cycle.root.root_hash) && facts.includes(cycle.root.state_hash), facts);
  assert.match(facts, /Time\s+2023-11-14 \d\d:\d\d:\d\d UTC/);
  assert.match(facts, /Attestation signature\s+valid/);
  assert.match(facts, /Attestation file\s+attestation.json holds the root’s signed bytes, signer and signature/);
  const rows = await page.$$eval('#solvency tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(rows.map((r) => r[0]), cycle.root.assets.map((a) => a.symbol));
  for (const row of rows) {
    assert.match(row[5], /^\d+\.\d\d %$/, `the ratio: ${row}`);
    assert.ok(!row[7].startsWith('short'), `covered: ${row}`);
  }
  assert.match(await page.textContent('#reserves-status'), /signed by the custody key [0-9a-f]{64}/);
  const shocks = await page.$$eval('#stress li', (lis) => lis.map((li) => li.textContent));
  assert.equal(shocks.length, 3);
  assert.match(shocks[0], /^-10 %: \d+ liquidated/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a user loads their proof file: "your balances are included"', async () => {
  const page = await openSite();
  await page.fill('#account', '2');
  await page.fill('#attest-key', DEV_ATTEST_KEY);
  await page.setInputFiles('#proof-file', cycle.proofs[2].file);
  await page.waitForSelector('#result[data-verdict]');
  const v = await verdict(page);
  assert.equal(v.verdict, 'ok', JSON.stringify(v));
  assert.equal(v.heading, '✓ Your balances are included');
  assert.equal(await page.isHidden('#verdict-warning'), true, 'the key is pinned: no warning');
  const steps = await page.$$eval('#steps li', (lis) => lis.map((li) => Number(li.value)));
  assert.deepEqual([...new Set(steps)], [3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
  const balances = await page.$$eval('#balances tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.equal(balances.length, cycle.root.assets.length);
  assert.ok(balances.some((row) => row[2] !== '0'), `account 2 has a debt: ${JSON.stringify(balances)}`);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'result', 'focus moves to the verdict');
  const path = process.env.UPDATE_SCREENSHOT ? join(WEB, 'screenshot.png') : join(dir, 'screenshot.png');
  // The README's picture: the page from its top down to the verdict.
  await page.setViewportSize({ width: 900, height: 900 });
  const bottom = await page.$eval('#result', (e) => e.getBoundingClientRect().bottom + window.scrollY + 12);
  await page.screenshot({ path, fullPage: true, clip: { x: 0, y: 0, width: 900, height: Math.ceil(bottom) } });
  console.log(`first verification in the page (cold, signature included): ${v.ms} ms; screenshot: ${path}`);
  await page.close();
});

test('without a mouse: paste the proof, Tab to the button, Enter', async () => {
  const page = await openSite();
  const unlabelled = await page.$$eval('input, textarea, select', (controls) => controls.filter((c) => c.labels.length === 0).map((c) => c.id));
  assert.deepEqual(unlabelled, [], 'every control has a label');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  const focusOn = async (id) => {
    for (let i = 0; i < 40; i += 1) {
      if (await page.evaluate(() => document.activeElement?.id) === id) return;
      await page.keyboard.press('Tab');
    }
    assert.fail(`Tab never reaches #${id}`);
  };
  await focusOn('proof-text');
  await page.keyboard.insertText(cycle.proofs[1].text);
  await focusOn('account');
  await page.keyboard.type('1');
  await focusOn('verify-button');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#result[data-verdict]');
  assert.equal((await verdict(page)).verdict, 'ok');
  assert.equal(await page.isVisible('#verdict-warning'), true, 'no key pinned: the page says any signer was accepted');
  assert.match(await page.textContent('#verdict-warning'), /any signer was accepted/);
  // Ctrl+Enter in the text area verifies too; a wrong account is named.
  await page.fill('#account', '3');
  await page.focus('#proof-text');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('#result[data-verdict=fail]');
  assert.equal((await verdict(page)).reason, 'account_mismatch');
  await page.close();
});

test('find the proof on the site by account id and salt', async () => {
  const page = await openSite();
  await page.focus('#find summary');
  await page.keyboard.press('Enter');
  await page.fill('#find-account', '3');
  await page.fill('#find-salt', cycle.proofs[3].salt);
  await page.focus('#find-salt');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#result[data-verdict]');
  assert.equal((await verdict(page)).verdict, 'ok');
  assert.match(await page.textContent('#find-status'), /^Found proofs\/[0-9a-f]{64}\.json\.$/);
  assert.equal(await page.inputValue('#account'), '3');
  await page.fill('#find-salt', cycle.proofs[1].salt);
  await page.click('#find-button');
  await page.waitForFunction(() => document.querySelector('#find-status').textContent.startsWith('No proof'));
  await page.close();
});

test("at a phone's width nothing is wider than the screen", async () => {
  const page = await openSite({ viewport: { width: 360, height: 740 } });
  await page.setInputFiles('#proof-file', cycle.proofs[2].file);
  await page.waitForSelector('#result[data-verdict=ok]');
  const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
  assert.ok(widths.page <= widths.screen, `the page is ${widths.page} px wide on a ${widths.screen} px screen`);
  await page.close();
});

test('every test vector in the page: the valid ones verify, each must-fail one is refused with its reason', async () => {
  const cases = vectorCases();
  const mustFail = cases.filter((c) => c.expect === 'fail');
  const page = await browser.context.newPage();
  let refused = 0;
  for (const c of cases) {
    await page.goto(`${server.origin}/vectors/${c.root.replace(/\.json$/, '')}/`);
    await page.waitForSelector('body[data-cycle=loaded], #load-status.error');
    if (c.attest_key) await page.fill('#attest-key', c.attest_key);
    if (c.account !== null) await page.fill('#account', String(c.account));
    await page.setInputFiles('#proof-file', join(VECTORS, c.proof));
    await page.waitForSelector('#result[data-verdict]');
    const v = await verdict(page);
    if (c.expect === 'ok') {
      assert.equal(v.verdict, 'ok', `${c.name}: ${v.heading}`);
    } else {
      assert.equal(v.verdict, 'fail', `${c.name} must be refused`);
      assert.equal(v.reason, c.reason, `${c.name}: ${v.heading}`);
      assert.match(v.heading, new RegExp(`^✗ Not verified: step \\d+ failed \\(${c.reason}\\)$`));
      assert.equal(await page.locator('#steps li.failed').count(), 1, c.name);
      refused += 1;
    }
  }
  assert.equal(refused, mustFail.length);
  console.log(`must-fail vectors refused in chromium: ${refused} of ${mustFail.length} (the Rust suite's, tools/tests/por_cli.rs: `
    + `${mustFail.length}); valid ones verified: ${cases.length - mustFail.length}`);
  await page.close();
});

test('time to verify one proof in the browser, signature included', async () => {
  const page = await openSite();
  const times = await page.evaluate(async ({ proofText, key }) => {
    const { verifyFiles } = await import('./verifier.js');
    const root = new Uint8Array(await (await fetch('root.json')).arrayBuffer());
    const proof = new TextEncoder().encode(proofText);
    const out = [];
    for (let i = 0; i < 41; i += 1) {
      const started = performance.now();
      const r = verifyFiles(proof, root, { attestKey: key });
      out.push(performance.now() - started);
      if (!r.ok) throw new Error(r.reason);
    }
    return out;
  }, { proofText: cycle.proofs[2].text, key: DEV_ATTEST_KEY });
  const [first, ...rest] = times;
  const median = rest.sort((a, b) => a - b)[Math.floor(rest.length / 2)];
  assert.ok(median < VERIFY_BUDGET_MS, `median ${median} ms`);
  console.log(`verification in chromium (both files parsed, root signature, leaf, path, sums): first ${first.toFixed(2)} ms, `
    + `median of the next ${rest.length} ${median.toFixed(2)} ms`);
  // The proof of a 1,000,000-account cycle of 8 assets has 20 levels: its parse and path on
  // a synthetic one (whose root is made up, so it ends in root_mismatch after every hash).
  const large = await page.evaluate(async () => {
    const { checkProof, parseProof } = await import('./verifier.js');
    const hash = (n) => Array.from({ length: 32 }, (_, i) => ((n * 31 + i * 7) & 255).toString(16).padStart(2, '0')).join('');
    const assets = Array.from({ length: 8 }, (_, i) => `ASSET${i}`);
    const values = () => assets.map((_, i) => String(1_000_000_000_000 + i * 12_345));
    const text = JSON.stringify({ format: 'verex-por-proof-v1', seq: 7, root_hash: hash(1), account: 5, salt: hash(2),
      position: 524_287, assets, equity: values(), debt: values(),
      path: Array.from({ length: 20 }, (_, k) => ({ hash: hash(k + 3), equity: values(), debt: values() })) });
    const root = { seq: 7, rootHash: Uint8Array.from(hash(1).match(/../g), (h) => parseInt(h, 16)), leafCount: 1_000_000,
      height: 20, assets: assets.map((symbol) => ({ symbol })) };
    const out = [];
    for (let i = 0; i < 41; i += 1) {
      const started = performance.now();
      try { checkProof(parseProof(text), root, null); } catch (e) { if (e.reason !== 'root_mismatch') throw e; }
      out.push(performance.now() - started);
    }
    return { bytes: text.length, out };
  });
  const [largeFirst, ...largeRest] = large.out;
  const largeMedian = largeRest.sort((a, b) => a - b)[Math.floor(largeRest.length / 2)];
  assert.ok(largeMedian < VERIFY_BUDGET_MS, `median ${largeMedian} ms`);
  console.log(`a proof of height 20 with 8 assets (${large.bytes} bytes) in chromium, parse and path (no signature): `
    + `first ${largeFirst.toFixed(2)} ms, median of the next ${largeRest.length} ${largeMedian.toFixed(2)} ms`);
  await page.close();
});

test('nothing but the test server was asked for', () => {
  assert.deepEqual(browser.foreign, [], 'requests to other origins');
  const foreign = browser.requests.filter((url) => !url.startsWith(`${server.origin}/`));
  assert.deepEqual(foreign, []);
  assert.ok(server.requests.length > 0);
  // Only the vector folders lack files (no reserves, stress report or index there).
  const missing = server.requests.filter((r) => r.status !== 200);
  for (const r of missing) {
    assert.match(r.url, /^\/(vectors\/[^/]+\/(reserves|risk|index|attestation)\.json|site\/proofs\/[0-9a-f]{64}\.json)$/, `${r.url} ${r.status}`);
  }
  console.log(`requests: ${browser.requests.length} from chromium, all to ${server.origin}; none elsewhere`);
});
