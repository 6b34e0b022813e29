// Cross-implementation agreement: the same files verified by `verex por verify` (the Rust
// implementation), by the page's verifier in node, and by the page's verifier in chromium,
// with identical verdicts (ok, or the same named reason). The files: every shared test vector
// (tools/tests/data/por, what `verex por vectors` writes), edge cases of the strict reading of
// docs/por.md section 2, and seeded random mutations of the valid proofs.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { verifyFiles } from '../verifier.js';
import { launch } from './browser.mjs';
import { serve } from './server.mjs';
import { VECTORS, WEB, cliVerdict, vectorCases, vectorFile } from './support.mjs';

const KEY = '73021425e5dd64a7c7d0b4a10708eeb99ec64e200522027558adc6426c07ba34';
const utf8 = (text) => Buffer.from(text, 'utf8');

/** Edits of a vector's text, each a case {name, proof, root, attestKey, account} of bytes. */
function edgeCases() {
  const proofText = vectorFile('proofs/valid_account_1.json').toString();
  const rootText = vectorFile('root-a.json').toString();
  const proof = JSON.parse(proofText);
  const root = JSON.parse(rootText);
  const cases = [];
  const add = (name, proofBytes, rootBytes = utf8(rootText), extra = {}) => {
    cases.push({ name, proof: proofBytes, root: rootBytes, attestKey: KEY, account: null, ...extra });
  };
  // A proof whose `key` is replaced by a raw JSON text.
  const withRaw = (key, raw) => utf8(JSON.stringify({ ...proof, [key]: '@@' }).replace('"@@"', raw));
  const withRawRoot = (key, raw) => utf8(JSON.stringify({ ...root, [key]: '@@' }).replace('"@@"', raw));
  const assetRaw = (key, raw) => {
    const edited = structuredClone(root);
    edited.assets[0][key] = '@@';
    return utf8(JSON.stringify(edited).replace('"@@"', raw));
  };
  add('valid, re-serialized', utf8(JSON.stringify(proof)));
  add('valid, fields reordered', utf8(JSON.stringify(Object.fromEntries(Object.entries(proof).reverse()))));
  add('a byte-order mark before the proof', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(proofText)]));
  add('not UTF-8', Buffer.concat([utf8(proofText.slice(0, 40)), Buffer.from([0xff, 0xfe]), utf8(proofText.slice(40))]));
  add('only non-breaking spaces', utf8('\u00a0\u3000 \n'));
  add('only a zero-width no-break space', utf8('\ufeff'));
  add('a JSON array', utf8('[1, 2]'));
  add('null', utf8('null'));
  add('trailing garbage', utf8(`${proofText.trim()}x`));
  add('seq written 1000.0', withRaw('seq', '1000.0'));
  add('seq written 1e3', withRaw('seq', '1e3'));
  add('account written -0', withRaw('account', '-0'));
  add('account 1.5', withRaw('account', '1.5'));
  add('account -1.5', withRaw('account', '-1.5'));
  add('account true', withRaw('account', 'true'));
  add('account 2^53 + 1', withRaw('account', '9007199254740993'));
  add('account 1e308', withRaw('account', '1e308'));
  add('position 1e400 (beyond a double)', withRaw('position', '1e400'));
  add('position "0" (a string)', withRaw('position', '"0"'));
  add('a lone surrogate in an unknown field', withRaw('note', '"\\ud800"'));
  add('a control character in a string', withRaw('note', '"a\u0001b"'));
  add('__proto__ as a field', withRaw('__proto__', '1'));
  add('an unknown field nested 127 deep', withRaw('note', `${'['.repeat(126)}${']'.repeat(126)}`));
  add('an unknown field nested 128 deep', withRaw('note', `${'['.repeat(127)}${']'.repeat(127)}`));
  add('a duplicated field, the last one wrong', utf8(proofText.trim().replace(/}$/, ',"account":2}')));
  add('a duplicated field, the last one right', utf8(proofText.trim().replace(/^{/, '{"account":2,')));
  add('format a number', withRaw('format', '1'));
  add('format absent', utf8(JSON.stringify({ ...proof, format: undefined })));
  add('salt in upper case', withRaw('salt', JSON.stringify(proof.salt.toUpperCase())));
  add('salt 0x-prefixed', withRaw('salt', JSON.stringify(`0x${proof.salt.slice(2)}`)));
  for (const bad of ['"007"', '"1e3"', '" 1"', '"+1"', '"-0"', '"-007"', '5', '""']) {
    add(`equity[0] ${bad}`, withRaw('equity', `[${bad}, ${JSON.stringify(proof.equity[1])}]`));
  }
  add('equity of 3 values', withRaw('equity', JSON.stringify([...proof.equity, '0'])));
  add('equity not an array', withRaw('equity', '{}'));
  add('257 assets', withRaw('assets', JSON.stringify(Array(257).fill('USDC'))));
  add('an asset symbol with a space', withRaw('assets', JSON.stringify(['US DC', 'BTC'])));
  add('41 path levels', withRaw('path', JSON.stringify(Array(41).fill(proof.path[0]))));
  add('a path level that is an array', withRaw('path', JSON.stringify([[], ...proof.path.slice(1)])));
  add('a path level with a leaf hash', withRaw('path', JSON.stringify([{ ...proof.path[0], leaf: 1 }, ...proof.path.slice(1)])));
  add('a path level without its hash', withRaw('path', JSON.stringify([{ ...proof.path[0], hash: undefined }, ...proof.path.slice(1)])));
  add('the wrong account expected', utf8(proofText), undefined, { account: 2 });
  add('the right account expected', utf8(proofText), undefined, { account: 1 });
  add('a proof file over 1 MiB', Buffer.concat([utf8(proofText), Buffer.alloc((1 << 20) + 1, 0x20)]));
  add('both files over 1 MiB', Buffer.concat([utf8(proofText), Buffer.alloc((1 << 20) + 1, 0x20)]),
    Buffer.concat([utf8(rootText), Buffer.alloc((1 << 20) + 1, 0x20)]));
  add('another signer, no key pinned', utf8(proofText), vectorFile('root-a-other-signer.json'), { attestKey: null });
  add('root: white space only', utf8(proofText), utf8(' \n\t'));
  add('root: height beyond u32', utf8(proofText), withRawRoot('height', '4294967296'));
  add('root: height wrong for the leaf count', utf8(proofText), withRawRoot('height', '4'));
  add('root: 257 assets', utf8(proofText), withRawRoot('assets', JSON.stringify(Array(257).fill(root.assets[0]))));
  add('root: an asset that is a string', utf8(proofText), withRawRoot('assets', '["USDC"]'));
  add('root: decimals 256', utf8(proofText), assetRaw('decimals', '256'));
  add('root: a bad symbol', utf8(proofText), assetRaw('symbol', '"USDC!"'));
  add('root: a symbol of 17 bytes', utf8(proofText), assetRaw('symbol', '"ABCDEFGHIJKLMNOPQ"'));
  add('root: liability off by one', utf8(proofText), assetRaw('liability', JSON.stringify(String(BigInt(root.assets[0].liability) + 1n))));
  add('root: liability -0', utf8(proofText), assetRaw('liability', '"-0"'));
  add('root: liability beyond i128', utf8(proofText), assetRaw('liability', `"-${'9'.repeat(40)}"`));
  add('root: an unknown asset field', utf8(proofText), assetRaw('price', '"1"'));
  add('root: a signature of 63 bytes', utf8(proofText), withRawRoot('signature', JSON.stringify(root.signature.slice(2))));
  add('root: format of another version', utf8(proofText), withRawRoot('format', '"verex-por-root-v2"'));
  add('root: a small-order signer', utf8(proofText), withRawRoot('signer', JSON.stringify(`01${'00'.repeat(31)}`)), { attestKey: null });
  return cases;
}

/** Seeded mutations of the valid proofs: a character changed, deleted or duplicated. */
function mutations(count) {
  let state = 0x9e3779b9;
  const next = (n) => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state % n;
  };
  const valid = vectorCases().filter((c) => c.expect === 'ok');
  const alphabet = '0123456789abcdef-",:{}[] e.';
  const out = [];
  for (let i = 0; i < count; i += 1) {
    const c = valid[next(valid.length)];
    const text = vectorFile(c.proof).toString();
    const at = next(text.length);
    const kind = next(3);
    const edited = kind === 0 ? text.slice(0, at) + alphabet[next(alphabet.length)] + text.slice(at + 1)
      : kind === 1 ? text.slice(0, at) + text.slice(at + 1)
        : text.slice(0, at) + text[at] + text.slice(at);
    out.push({ name: `mutation ${i} of ${c.name}`, proof: utf8(edited), root: vectorFile(c.root), attestKey: c.attest_key, account: c.account });
  }
  return out;
}

const vectors = () => vectorCases().map((c) => ({
  name: c.name, proof: vectorFile(c.proof), root: vectorFile(c.root), attestKey: c.attest_key, account: c.account,
  expect: c.expect, reason: c.reason,
}));

const verdictOf = (r) => (r.ok ? 'ok' : r.reason);

let dir;
let server;
let browser;
let page;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'verex-agreement-'));
  server = await serve({ '/': WEB });
  browser = await launch(server.origin);
  page = await browser.context.newPage();
  await page.goto(`${server.origin}/index.html`);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every case's verdict from the CLI, node and chromium. */
async function threeVerdicts(cases) {
  const cli = cases.map((c, i) => {
    const proof = join(dir, `${i}-proof.json`);
    const root = join(dir, `${i}-root.json`);
    writeFileSync(proof, c.proof);
    writeFileSync(root, c.root);
    return cliVerdict({ proof, root, attestKey: c.attestKey, account: c.account });
  });
  const node = cases.map((c) => verifyFiles(c.proof, c.root, { attestKey: c.attestKey, account: c.account }));
  const browserVerdicts = await page.evaluate(async (input) => {
    const { verifyFiles: verifyInBrowser } = await import('./verifier.js');
    const bytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    return input.map((c) => {
      const r = verifyInBrowser(bytes(c.proof), bytes(c.root), { attestKey: c.attestKey, account: c.account });
      return { verdict: r.ok ? 'ok' : r.reason, stage: r.ok ? null : r.stage };
    });
  }, cases.map((c) => ({ proof: c.proof.toString('base64'), root: c.root.toString('base64'), attestKey: c.attestKey, account: c.account })));
  return cases.map((c, i) => ({
    name: c.name,
    cli: cli[i],
    node: { verdict: verdictOf(node[i]), stage: node[i].ok ? null : node[i].stage },
    browser: browserVerdicts[i],
  }));
}

function assertAgree(rows) {
  for (const row of rows) {
    assert.equal(row.node.verdict, row.cli.verdict, `${row.name}: node says ${row.node.verdict}, verex ${row.cli.verdict}`);
    assert.equal(row.browser.verdict, row.cli.verdict, `${row.name}: chromium says ${row.browser.verdict}, verex ${row.cli.verdict}`);
    assert.equal(row.node.stage, row.cli.file, `${row.name}: node blames the ${row.node.stage} file, verex the ${row.cli.file}`);
    assert.equal(row.browser.stage, row.cli.file, `${row.name}: chromium blames the ${row.browser.stage} file, verex the ${row.cli.file}`);
  }
}

test('every shared test vector: verex por verify, node and chromium give its verdict and reason', async () => {
  const cases = vectors();
  const rows = await threeVerdicts(cases);
  assertAgree(rows);
  rows.forEach((row, i) => {
    const expected = cases[i].expect === 'ok' ? 'ok' : cases[i].reason;
    assert.equal(row.cli.verdict, expected, `${row.name}: verex`);
  });
  const refused = (side) => rows.filter((r) => r[side].verdict !== 'ok').length;
  const mustFail = cases.filter((c) => c.expect === 'fail').length;
  assert.equal(refused('cli'), mustFail);
  assert.equal(refused('browser'), mustFail);
  console.log(`agreement: ${cases.length} vectors (${cases.length - mustFail} valid, ${mustFail} must-fail): `
    + `verex por verify, node and chromium agree on every verdict; refused: verex ${refused('cli')}, `
    + `node ${refused('node')}, chromium ${refused('browser')}`);
});

test('edge cases of the strict reading: the three agree', async () => {
  const cases = edgeCases();
  const rows = await threeVerdicts(cases);
  assertAgree(rows);
  const kinds = new Set(rows.map((r) => r.cli.verdict));
  assert.ok(kinds.size >= 12, `the edge cases reach ${[...kinds].join(', ')}`);
  console.log(`agreement: ${cases.length} edge cases (${[...kinds].sort().join(', ')}): verex, node and chromium agree`);
});

test('seeded random mutations of the valid proofs: the three agree', async () => {
  const cases = mutations(150);
  const rows = await threeVerdicts(cases);
  assertAgree(rows);
  const counts = {};
  for (const r of rows) counts[r.cli.verdict] = (counts[r.cli.verdict] ?? 0) + 1;
  console.log(`agreement: ${cases.length} mutations (${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')}): `
    + 'verex, node and chromium agree');
});

test('nothing but the test server was asked for', () => {
  assert.deepEqual(browser.foreign, []);
  assert.ok(browser.requests.every((url) => url.startsWith(`${server.origin}/`)), browser.requests.join('\n'));
  assert.ok(server.requests.some((r) => r.url === '/vendor/noble.js'));
  assert.ok(VECTORS);
});
