// The page's verifier in node: the derivations of docs/por.md against primitives.json, every
// test vector's verdict and reason, verex's signature rule on the ed25519 edge cases.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import * as v from '../verifier.js';
import { REPO, vectorCases, vectorFile } from './support.mjs';

const fromHex = (text) => Uint8Array.from(Buffer.from(text, 'hex'));
const primitives = JSON.parse(vectorFile('primitives.json'));

test('every derivation gives the bytes of primitives.json', () => {
  const { salt, user, leaf, node, pads } = primitives;
  assert.equal(v.toHex(v.deriveSalt(fromHex(salt.seed), BigInt(salt.seq), BigInt(salt.account))), salt.salt, 'salt (keyed BLAKE3)');
  assert.equal(v.toHex(v.userHash(BigInt(user.account), fromHex(user.salt))), user.user, 'user');
  assert.equal(v.toHex(v.leafHash(fromHex(leaf.user), leaf.sums.map(BigInt))), leaf.hash, 'leaf');
  assert.equal(
    v.toHex(v.nodeHash(node.left_sums.map(BigInt), node.right_sums.map(BigInt), fromHex(node.left_hash), fromHex(node.right_hash))),
    node.hash,
    'node',
  );
  assert.deepEqual(v.padHashes(pads.assets, pads.hashes.length - 1).map(v.toHex), pads.hashes, 'padding');
  const seed = primitives.seed_commitment;
  assert.equal(v.toHex(v.seedCommitment(fromHex(seed.seed))), seed.commitment, 'seed commitment');
  const root = v.parseRoot(vectorFile('root-a.json').toString());
  assert.equal(v.toHex(v.rootSignedBytes(root)), primitives.root_a_signed_bytes, "root-a.json's signed bytes");
  assert.equal(v.rootSignedBytes(root).length, 168 + 49 * root.assets.length);
});

test('the same account and balances make another leaf in another cycle', () => {
  const same = primitives.same_account_and_balances_in_two_cycles;
  const leafIn = (seedHex, rootFile) => {
    const { seq } = v.parseRoot(vectorFile(rootFile).toString());
    const salt = v.deriveSalt(fromHex(seedHex), BigInt(seq), BigInt(same.account));
    return v.toHex(v.leafHash(v.userHash(BigInt(same.account), salt), same.sums.map(BigInt)));
  };
  assert.equal(leafIn(primitives.root_a_salt_seed, 'root-a.json'), same.leaf_cycle_a);
  assert.equal(leafIn(primitives.root_b_salt_seed, 'root-b.json'), same.leaf_cycle_b);
});

test('every test vector gets its verdict and named reason', () => {
  const cases = vectorCases();
  assert.ok(cases.length >= 32, `${cases.length} cases`);
  for (const c of cases) {
    const r = v.verifyFiles(vectorFile(c.proof), vectorFile(c.root), { attestKey: c.attest_key, account: c.account });
    assert.equal(r.ok ? 'ok' : 'fail', c.expect, `${c.name}: ${r.reason}: ${r.detail}`);
    if (!r.ok) {
      assert.equal(r.reason, c.reason, `${c.name}: ${r.detail}`);
      assert.ok(Number.isInteger(r.step) && r.step >= 1 && r.step <= 18, `${c.name}: step ${r.step}`);
    } else {
      assert.equal(r.pinned, c.attest_key !== null);
      assert.equal(r.trace.filter((t) => t.level).length, r.root.height, `${c.name}: one trace line per level`);
    }
  }
});

test('a valid proof says what it proves, and without a pinned key says so', () => {
  const r = v.verifyFiles(vectorFile('proofs/valid_account_4_with_debt.json'), vectorFile('root-a.json'));
  assert.equal(r.ok, true);
  assert.equal(r.pinned, false, 'no key pinned: any signer accepted, and the result says so');
  assert.equal(r.verified.account, 4);
  assert.ok(r.verified.debt.some((d) => d > 0n));
  assert.deepEqual(r.trace.map((t) => t.step).filter((s, i, all) => all.indexOf(s) === i), [3, 4, 6, 9, 11, 12, 13, 14, 15, 16, 17, 18]);
  assert.throws(() => v.verifyFiles('{}', '{}', { attestKey: 'not a key' }), TypeError);
});

/** The twelve ed25519-speccheck vectors with verex's verdicts, read from the Rust suite itself. */
function speccheckVectors() {
  const source = readFileSync(join(REPO, 'engine', 'tests', 'signature_vectors.rs'), 'utf8');
  const pattern = /message: "([0-9a-f]*)",\s*key: "([0-9a-f]{64})",\s*signature: "([0-9a-f]{128})",\s*verdict: (Ok\(\(\)\)|Err\(SignatureFault::(\w+)\))/g;
  return [...source.matchAll(pattern)].map((m) => ({ message: m[1], key: m[2], signature: m[3], accept: m[4] === 'Ok(())', fault: m[5] }));
}

test("verex's signature rule on the ed25519 edge cases (speccheck), as the Rust suite has it", () => {
  const vectors = speccheckVectors();
  assert.equal(vectors.length, 12);
  vectors.forEach((vector, i) => {
    const why = v.signatureFault(fromHex(vector.key), fromHex(vector.message), fromHex(vector.signature));
    assert.equal(why === null, vector.accept, `speccheck case ${i} (verex: ${vector.fault ?? 'accept'}): ${why}`);
  });
});

test('amounts are shown with their decimals', () => {
  assert.equal(v.formatUnits(77000000n, 6), '77');
  assert.equal(v.formatUnits(1234567891n, 6), '1,234.567891');
  assert.equal(v.formatUnits(5n, 8), '0.00000005');
  assert.equal(v.formatUnits(-1500000n, 6), '−1.5');
  assert.equal(v.formatUnits(0n, 0), '0');
});
