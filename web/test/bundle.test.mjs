// vendor/noble.js is what the locked packages give (reproducible), and the page loads nothing
// from outside its folder.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { BUNDLE_PATH, bundle } from '../scripts/bundle.mjs';
import { PAGE_FILES, WEB } from './support.mjs';

test('vendor/noble.js is byte for byte the bundle of the locked @noble packages', async () => {
  const fresh = await bundle();
  assert.ok(readFileSync(BUNDLE_PATH, 'utf8') === fresh, 'vendor/noble.js differs from a fresh bundle: run `npm run bundle`');
  const lock = JSON.parse(readFileSync(join(WEB, 'package-lock.json'), 'utf8'));
  for (const pkg of ['@noble/hashes', '@noble/curves']) {
    const { version } = lock.packages[`node_modules/${pkg}`];
    assert.ok(fresh.includes(`${pkg} ${version}`), `the bundle names ${pkg} ${version}`);
  }
});

test("the page's files refer to nothing outside their folder", () => {
  for (const name of PAGE_FILES.filter((n) => !n.startsWith('vendor/'))) {
    const text = readFileSync(join(WEB, name), 'utf8');
    assert.doesNotMatch(text, /(src|href)\s*=\s*["'](https?:)?\/\//i, `${name} loads something from another origin`);
    assert.doesNotMatch(text, /(fetch|import)\(\s*["'`](https?:)?\/\//i, `${name} fetches from another origin`);
  }
  const imports = [...readFileSync(join(WEB, 'verifier.js'), 'utf8').matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  assert.deepEqual(imports, ['./vendor/noble.js']);
  assert.doesNotMatch(readFileSync(BUNDLE_PATH, 'utf8'), /^import /m, 'the bundle imports nothing');
});
