// verex Proof of Reserves: an independent verifier of a proof against a published root, written
// from docs/por.md of the verex repository (the format specification), not from verex's Rust
// code. It runs as it is in a browser (the page) and in node (the tests).
//
// verifyFiles(proof, root, {attestKey, account}) makes the checks of docs/por.md section 7 in
// their order and stops at the first that fails, naming it with the same word as verex and the
// test vectors (`reason`). Every integer a file carries is handled as a BigInt; every sum is
// checked below 2^64.

import { blake3, ed25519 } from './vendor/noble.js';

// ---- Limits and tags (docs/por.md sections 2, 4, 7) ----

const U64_LIMIT = 1n << 64n; // balances and sums: 0 <= v < 2^64
const I128_MIN = -(1n << 127n);
const I128_MAX = (1n << 127n) - 1n;
const MAX_JSON_INTEGER = 2 ** 53 - 1; // counts and ids are JSON numbers up to 2^53 - 1
const U32_MAX = 2 ** 32 - 1;
const U8_MAX = 255;
export const MAX_ASSETS = 256;
export const MAX_HEIGHT = 40;
/** The largest file verex reads as a PoR file (larger is `out_of_range`, before anything else). */
export const MAX_FILE_BYTES = 1 << 20;
/** serde_json's nesting limit (128 levels refused): verex reads a deeper document as not JSON (`malformed`). */
const MAX_NESTING = 127;

const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const TAG = {
  leaf: ascii('verex-por-leaf'),
  node: ascii('verex-por-node'),
  pad: ascii('verex-por-pad'),
  salt: ascii('verex-por-salt'),
  seed: ascii('verex-por-seed'),
  attest: ascii('verex-por-att-v1'),
  reserve: ascii('verex-reserve-v1'),
};

export const ROOT_FORMAT = 'verex-por-root-v1';
export const PROOF_FORMAT = 'verex-por-proof-v1';
export const RESERVES_FORMAT = 'verex-reserves-v1';
const ROOT_FIELDS = ['format', 'seq', 'journal_digest', 'state_hash', 'root_hash', 'seed_commitment',
  'leaf_count', 'height', 'assets', 'signer', 'signature'];
const ROOT_ASSET_FIELDS = ['symbol', 'decimals', 'equity', 'debt', 'liability', 'fees', 'insurance'];
const PROOF_FIELDS = ['format', 'seq', 'root_hash', 'account', 'salt', 'position', 'assets', 'equity',
  'debt', 'path'];
const SIBLING_FIELDS = ['hash', 'equity', 'debt'];

// ---- Faults ----

/** A check that failed: `reason` is the named fault of docs/por.md, `detail` the specifics. */
export class PorFault extends Error {
  constructor(reason, detail, step) {
    super(`${reason}: ${detail}`);
    this.reason = reason;
    this.detail = detail;
    /** The step of docs/por.md section 7 that failed (set where it is known). */
    this.step = step;
  }
}
const fail = (reason, detail, step) => { throw new PorFault(reason, detail, step); };

/** Runs `fn`, giving a fault that names no step the step `step`. */
function atStep(step, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PorFault && e.step === undefined) e.step = step;
    throw e;
  }
}

// ---- Bytes ----

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
export { hex as toHex };

function fromHex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** `value` as `width` bytes little-endian (value a BigInt or a safe integer). */
function le(value, width) {
  let v = BigInt(value);
  const out = new Uint8Array(width);
  for (let i = 0; i < width; i += 1) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

const u64s = (values) => concat(values.map((v) => le(v, 8)));
const equalBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- Derivations (docs/por.md sections 3 and 4) ----

/** `BLAKE3-keyed(salt_seed, "verex-por-salt" ‖ seq u64 ‖ id u64)`. */
export function deriveSalt(seed, seq, account) {
  return blake3(concat([TAG.salt, le(seq, 8), le(account, 8)]), { key: seed });
}

/** `BLAKE3("verex-por-seed" ‖ salt_seed)`. */
export const seedCommitment = (seed) => blake3(concat([TAG.seed, seed]));

/** `BLAKE3(id u64 ‖ salt)`: binds the leaf to its account; also names the published proof file. */
export const userHash = (account, salt) => blake3(concat([le(account, 8), salt]));

/** `BLAKE3("verex-por-leaf" ‖ user ‖ sums)`, sums = equity[0..A] ‖ debt[0..A] as u64 LE. */
export const leafHash = (user, sums) => blake3(concat([TAG.leaf, user, u64s(sums)]));

/** `BLAKE3("verex-por-node" ‖ l.sums ‖ r.sums ‖ l.h ‖ r.h)`. */
export const nodeHash = (leftSums, rightSums, left, right) =>
  blake3(concat([TAG.node, u64s(leftSums), u64s(rightSums), left, right]));

/** The padding subtree's hash at levels 0..height (its sums are all zero). */
export function padHashes(assets, height) {
  const zeros = new Array(2 * assets).fill(0n);
  const pads = [blake3(TAG.pad)];
  for (let k = 0; k < height; k += 1) pads.push(nodeHash(zeros, zeros, pads[k], pads[k]));
  return pads;
}

/** The smallest H >= 1 with 2^H >= leafCount. */
export function heightFor(leafCount) {
  let height = 1;
  while (height < 64 && (1n << BigInt(height)) < BigInt(leafCount)) height += 1;
  return height;
}

/** Checked per-value addition: the index of the first value at or beyond 2^64, or the sums. */
function addSums(a, b) {
  const out = [];
  for (let i = 0; i < a.length; i += 1) {
    const s = a[i] + b[i];
    if (s >= U64_LIMIT) return { overflow: i };
    out.push(s);
  }
  return { sums: out };
}

/** The bytes the attest key signs for a root (docs/por.md section 5): 168 + 49·A bytes. */
export function rootSignedBytes(root) {
  const parts = [TAG.attest, le(root.seq, 8), root.journalDigest, root.stateHash, root.rootHash,
    root.seedCommitment, le(root.leafCount, 8), le(root.height, 4), le(root.assets.length, 4)];
  for (const a of root.assets) {
    parts.push(symbolBytes(a.symbol), le(a.decimals, 1), le(a.equity, 8), le(a.debt, 8), le(a.fees, 8),
      le(a.insurance, 8));
  }
  return concat(parts);
}

/** The bytes the custody key signs for reserves (docs/por.md section 9). */
export function reservesSignedBytes(reserves) {
  const parts = [TAG.reserve, le(reserves.seq, 8), le(reserves.entries.length, 4)];
  for (const e of reserves.entries) {
    const position = new TextEncoder().encode(e.chainPosition);
    parts.push(symbolBytes(e.asset), le(e.amount, 8), le(position.length, 4), position);
  }
  return concat(parts);
}

function symbolBytes(symbol) {
  const out = new Uint8Array(16);
  out.set(ascii(symbol));
  return out;
}

// ---- Signatures: verex's one rule (docs/por.md section 2, SPEC 4) ----

const FIELD_P = (1n << 255n) - 19n;
const GROUP_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;
const littleEndian = (bytes) => bytes.reduceRight((v, b) => (v << 8n) | BigInt(b), 0n);

/** Why an encoded point fails the rule, or null: canonical (y < p, no x = 0 with the sign bit set), a curve point, not of small order. */
function pointFault(bytes, name) {
  const y = littleEndian(bytes) & ((1n << 255n) - 1n);
  if (y >= FIELD_P) return `${name} is not a canonical point encoding (y >= p)`;
  let point;
  try {
    point = ed25519.Point.fromBytes(bytes, false);
  } catch (e) {
    return `${name} is not a canonical encoding of a curve point (${e.message})`;
  }
  if (point.isSmallOrder()) return `${name} is a point of small order`;
  return null;
}

/** The reason `signature` of `message` by `key` fails verex's rule, or null when it holds. */
export function signatureFault(key, message, signature) {
  const keyFault = pointFault(key, 'the public key');
  if (keyFault) return keyFault;
  const rFault = pointFault(signature.subarray(0, 32), "the signature's R");
  if (rFault) return rFault;
  if (littleEndian(signature.subarray(32)) >= GROUP_ORDER) return "the signature's S is not below the group order";
  // Strict decoding (zip215: false), S < l and the cofactored equation [8][S]B = [8]R + [8][k]A.
  if (!ed25519.verify(signature, message, key, { zip215: false })) return 'the signature equation does not hold';
  return null;
}

// ---- Strict JSON readers (docs/por.md section 2) ----

/** Unicode White_Space, the white space a blank file may hold (not U+FEFF). */
const BLANK = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** Decodes a file's bytes as verex reads them: too large, not UTF-8 (a BOM is kept, not skipped). */
export function decodeFile(data) {
  if (typeof data === 'string') return data;
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length > MAX_FILE_BYTES) {
    fail('out_of_range', `${bytes.length} bytes, larger than any PoR file (${MAX_FILE_BYTES})`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail('malformed', 'not UTF-8 text');
  }
}

/** Deepest nesting of arrays and objects in a JSON text (strings skipped). */
function nesting(text) {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i += 1;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') deepest = Math.max(deepest, (depth += 1));
    else if (c === ']' || c === '}') depth -= 1;
  }
  return deepest;
}

/** One JSON object from a file's text: `empty_input`, `malformed`. */
function parseObject(text, what) {
  if (BLANK.test(text)) fail('empty_input', `the ${what} is empty`);
  let value;
  try {
    // Like verex's reader, a number beyond the double range or a string with a lone surrogate
    // makes the text not JSON.
    value = JSON.parse(text, (key, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('a number out of range');
      if (typeof v === 'string' && !v.isWellFormed()) throw new Error('a lone surrogate');
      if (!key.isWellFormed()) throw new Error('a lone surrogate');
      return v;
    });
  } catch (e) {
    return fail('malformed', `the ${what} is not JSON (truncated?): ${e.message}`);
  }
  if (nesting(text) > MAX_NESTING) fail('malformed', `the ${what} nests deeper than ${MAX_NESTING}`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail('malformed', `the ${what} is not a JSON object`);
  }
  return value;
}

const has = (map, key) => Object.prototype.hasOwnProperty.call(map, key);
const show = (value) => (value === undefined ? 'absent' : JSON.stringify(value));

function checkKeys(map, allowed, format, what) {
  const unknown = Object.keys(map).find((k) => !allowed.includes(k));
  if (unknown !== undefined) fail('unknown_field', `the ${what} has a field \`${unknown}\``);
  if (!has(map, 'format')) fail('missing_field', `the ${what} has no \`format\``);
  if (map.format !== format) fail('unknown_format', `the ${what}'s format is ${show(map.format)}, expected "${format}"`);
}

function field(map, name, what) {
  if (!has(map, name)) fail('missing_field', `the ${what} has no \`${name}\``);
  return map[name];
}

const CANONICAL = /^(0|[1-9][0-9]*)$/;

/** A balance or sum: a canonical decimal string below 2^64, as a BigInt. */
function amount(value, name) {
  if (typeof value !== 'string') fail('not_a_number', `${name} is ${show(value)}, not a decimal string`);
  if (value.startsWith('-') && CANONICAL.test(value.slice(1)) && value !== '-0') {
    fail('negative_value', `${name} is ${value}: values are never negative`);
  }
  if (!CANONICAL.test(value)) fail('not_a_number', `${name} is ${show(value)}, not a canonical decimal string`);
  const v = BigInt(value);
  if (v >= U64_LIMIT) fail('out_of_range', `${name} is ${value}, not below 2^64`);
  return v;
}

/** A signed amount (a liability): canonical, an optional `-` (never `-0`), within i128. */
function signedAmount(value, name) {
  if (typeof value !== 'string') fail('not_a_number', `${name} is ${show(value)}, not a decimal string`);
  const digits = value.startsWith('-') ? value.slice(1) : value;
  if (!CANONICAL.test(digits) || value === '-0') {
    fail('not_a_number', `${name} is ${show(value)}, not a canonical decimal string`);
  }
  const v = BigInt(value);
  if (v < I128_MIN || v > I128_MAX) fail('out_of_range', `${name} is ${value}, out of range`);
  return v;
}

/** A count or id: a JSON number whose value is whole, 0 <= v <= 2^53 - 1. */
function integer(value, name) {
  if (typeof value !== 'number') fail('not_a_number', `${name} is ${show(value)}, not an integer`);
  if (value < 0) fail('negative_value', `${name} is ${value}: never negative`);
  if (!Number.isInteger(value)) fail('not_a_number', `${name} is ${value}, not a whole number`);
  if (value > MAX_JSON_INTEGER) fail('out_of_range', `${name} is ${value}, above 2^53 − 1`);
  return value;
}

/** Lower-case hex of exactly `bytes` bytes. */
function hexField(value, name, bytes) {
  if (typeof value !== 'string' || value.length !== 2 * bytes || !/^[0-9a-f]*$/.test(value)) {
    fail('bad_hex', `${name} is ${show(value)}, not ${2 * bytes} lower-case hex digits`);
  }
  return fromHex(value);
}

function array(value, name) {
  if (!Array.isArray(value)) fail('malformed', `${name} is not an array`);
  return value;
}

function amounts(value, name, length) {
  const items = array(value, name);
  if (items.length !== length) {
    fail('asset_mismatch', `${name} has ${items.length} values, the assets are ${length}`);
  }
  return items.map((v, i) => amount(v, `${name}[${i}]`));
}

const SYMBOL = /^[A-Za-z0-9._/-]{1,16}$/;
function symbol(value, name) {
  if (typeof value !== 'string' || !SYMBOL.test(value)) fail('bad_symbol', `${name} is ${show(value)}, not an asset symbol`);
  return value;
}

function object(value, what) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('malformed', `${what} is not an object`);
  return value;
}

// ---- The root file (docs/por.md section 7, steps 1-3) ----

/** Parses `root.json` strictly; fields in any order, none missing, none unknown. */
export function parseRoot(text) {
  const map = atStep(1, () => parseObject(text, 'root'));
  atStep(2, () => checkKeys(map, ROOT_FIELDS, ROOT_FORMAT, 'root'));
  return atStep(3, () => rootFields(map));
}

function rootFields(map) {
  const get = (name) => field(map, name, 'root');
  const seq = integer(get('seq'), 'seq');
  const journalDigest = hexField(get('journal_digest'), 'journal_digest', 32);
  const stateHash = hexField(get('state_hash'), 'state_hash', 32);
  const rootHash = hexField(get('root_hash'), 'root_hash', 32);
  const committedSeed = hexField(get('seed_commitment'), 'seed_commitment', 32);
  const leafCount = integer(get('leaf_count'), 'leaf_count');
  const height = integer(get('height'), 'height');
  if (height > U32_MAX) fail('out_of_range', 'height does not fit u32');
  const items = array(get('assets'), 'assets');
  if (items.length > MAX_ASSETS) fail('out_of_range', `${items.length} assets, at most ${MAX_ASSETS}`);
  const assets = items.map(parseRootAsset);
  const signer = hexField(get('signer'), 'signer', 32);
  const signature = hexField(get('signature'), 'signature', 64);
  return { seq, journalDigest, stateHash, rootHash, seedCommitment: committedSeed, leafCount, height, assets,
    signer, signature };
}

function parseRootAsset(item, index) {
  const what = `assets[${index}]`;
  const map = object(item, what);
  const unknown = Object.keys(map).find((k) => !ROOT_ASSET_FIELDS.includes(k));
  if (unknown !== undefined) fail('unknown_field', `${what} has a field \`${unknown}\``);
  const get = (name) => field(map, name, what);
  const name = (f) => `${what}.${f}`;
  const sym = symbol(get('symbol'), name('symbol'));
  const decimals = integer(get('decimals'), name('decimals'));
  if (decimals > U8_MAX) fail('out_of_range', `${name('decimals')} does not fit u8`);
  const asset = {
    symbol: sym,
    decimals,
    equity: amount(get('equity'), name('equity')),
    debt: amount(get('debt'), name('debt')),
    fees: amount(get('fees'), name('fees')),
    insurance: amount(get('insurance'), name('insurance')),
  };
  const liability = signedAmount(get('liability'), name('liability'));
  if (liability !== asset.equity - asset.debt) {
    fail('liability_mismatch', `${name('liability')} is ${liability}, but Σequity − Σdebt is ${asset.equity - asset.debt}`);
  }
  asset.liability = liability;
  return asset;
}

/** The root's own checks (steps 4-6): its height, its signer when one is pinned, its signature. */
export function checkRoot(root, attestKey) {
  const expected = heightFor(root.leafCount);
  if (root.height !== expected) {
    fail('wrong_depth', `the root says height ${root.height} for ${root.leafCount} leaves (it must be ${expected})`, 4);
  }
  if (attestKey && !equalBytes(attestKey, root.signer)) {
    fail('wrong_signer', `the root is signed by ${hex(root.signer)}, not the attest key ${hex(attestKey)}`, 5);
  }
  const why = signatureFault(root.signer, rootSignedBytes(root), root.signature);
  if (why) fail('bad_signature', `the root's signature does not verify: ${why}`, 6);
}

// ---- The proof file (steps 7-9) ----

/** Parses a proof file strictly. */
export function parseProof(text) {
  const map = atStep(7, () => parseObject(text, 'proof'));
  atStep(8, () => checkKeys(map, PROOF_FIELDS, PROOF_FORMAT, 'proof'));
  return atStep(9, () => proofFields(map));
}

function proofFields(map) {
  const get = (name) => field(map, name, 'proof');
  const seq = integer(get('seq'), 'seq');
  const rootHash = hexField(get('root_hash'), 'root_hash', 32);
  const account = integer(get('account'), 'account');
  if (!has(map, 'salt')) fail('missing_salt', 'the proof has no salt');
  const salt = hexField(map.salt, 'salt', 32);
  const position = integer(get('position'), 'position');
  const symbols = array(get('assets'), 'assets');
  if (symbols.length > MAX_ASSETS) fail('out_of_range', `${symbols.length} assets, at most ${MAX_ASSETS}`);
  const assets = symbols.map((s, i) => symbol(s, `assets[${i}]`));
  const a = assets.length;
  const equity = amounts(get('equity'), 'equity', a);
  const debt = amounts(get('debt'), 'debt', a);
  const levels = array(get('path'), 'path');
  if (levels.length > MAX_HEIGHT) {
    fail('wrong_depth', `the path has ${levels.length} levels, no tree is taller than ${MAX_HEIGHT}`);
  }
  const path = levels.map((level, k) => parseSibling(level, k, a));
  return { seq, rootHash, account, salt, position, assets, equity, debt, path };
}

function parseSibling(value, level, assets) {
  const what = `path[${level}]`;
  const map = object(value, what);
  const unknown = Object.keys(map).find((k) => !SIBLING_FIELDS.includes(k));
  if (unknown !== undefined) fail('unknown_field', `${what} has a field \`${unknown}\``);
  const get = (name) => field(map, name, what);
  const hash = hexField(get('hash'), `${what}.hash`, 32);
  const sums = amounts(get('equity'), `${what}.equity`, assets).concat(amounts(get('debt'), `${what}.debt`, assets));
  return { hash, sums };
}

// ---- The proof against the root (steps 10-18) ----

/**
 * Checks a parsed proof against a parsed root (whose own checks are checkRoot's). `trace`
 * receives each step done, for the page to show: {step, text}.
 */
export function checkProof(proof, root, account, trace = () => {}) {
  if (account !== null && account !== undefined && account !== proof.account) {
    fail('account_mismatch', `the proof is for account ${proof.account}, not account ${account}`, 10);
  }
  if (account !== null && account !== undefined) trace({ step: 10, text: `The proof is for account ${account}, yours.` });
  if (proof.seq !== root.seq || !equalBytes(proof.rootHash, root.rootHash)) {
    fail('wrong_cycle', `the proof is for the cycle at seq ${proof.seq} with root ${hex(proof.rootHash)}, `
      + `the root file is the cycle at seq ${root.seq} with root ${hex(root.rootHash)}`, 11);
  }
  trace({ step: 11, text: `The proof names this cycle: seq ${root.seq}, root ${hex(root.rootHash)}.` });
  const symbols = root.assets.map((x) => x.symbol);
  if (proof.assets.length !== symbols.length || proof.assets.some((s, i) => s !== symbols[i])) {
    fail('asset_mismatch', `the proof covers [${proof.assets.join(',')}], the root [${symbols.join(',')}]`, 12);
  }
  trace({ step: 12, text: `The proof covers the root's assets, in order: ${symbols.join(', ')}.` });
  if (proof.salt.every((b) => b === 0)) fail('missing_salt', 'the salt is all zeros', 13);
  trace({ step: 13, text: 'The proof has a salt (not all zeros).' });
  if (proof.path.length !== root.height) {
    fail('wrong_depth', `the path has ${proof.path.length} levels, the tree's height is ${root.height}`, 14);
  }
  trace({ step: 14, text: `The path has ${root.height} levels, the tree's height.` });
  if (proof.position >= root.leafCount) {
    fail('bad_position', `position ${proof.position} is not below the leaf count ${root.leafCount}`, 15);
  }
  trace({ step: 15, text: `Position ${proof.position} is one of the ${root.leafCount} leaves.` });
  const { hash, sums } = walk(proof, trace);
  if (!equalBytes(hash, root.rootHash)) {
    fail('root_mismatch', `the path computes root ${hex(hash)}, the published root is ${hex(root.rootHash)}`, 17);
  }
  trace({ step: 17, text: `The computed root is the published root ${hex(root.rootHash)}.` });
  const totals = root.assets.map((x) => x.equity).concat(root.assets.map((x) => x.debt));
  const differs = sums.findIndex((v, i) => v !== totals[i]);
  if (differs >= 0) {
    fail('totals_mismatch', `the path's sums differ from the published totals (${valueName(differs, root.assets)}: `
      + `${sums[differs]}, published ${totals[differs]})`, 18);
  }
  trace({ step: 18, text: "The computed sums are the published totals of every asset's equity and debt." });
  return { account: proof.account, equity: proof.equity, debt: proof.debt };
}

function valueName(index, assets) {
  const a = assets.length;
  const symbolOf = (i) => (typeof assets[i] === 'string' ? assets[i] : assets[i].symbol);
  return index < a ? `the equity of ${symbolOf(index)}` : `the debt of ${symbolOf(index - a)}`;
}

/** The leaf from the proof's own values and salt, then each parent up the path (step 16). */
function walk(proof, trace) {
  let sums = proof.equity.concat(proof.debt);
  const user = userHash(proof.account, proof.salt);
  let hash = leafHash(user, sums);
  trace({ step: 16, text: `Your leaf, hashed from your account, salt and balances: ${hex(hash)}.` });
  const position = BigInt(proof.position);
  proof.path.forEach((sibling, level) => {
    const right = ((position >> BigInt(level)) & 1n) === 1n;
    const [l, r] = right ? [sibling, { hash, sums }] : [{ hash, sums }, sibling];
    const added = addSums(l.sums, r.sums);
    if (added.overflow !== undefined) {
      fail('sum_overflow', `level ${level + 1}: the sum of ${valueName(added.overflow, proof.assets)} overflows 2^64`, 16);
    }
    hash = nodeHash(l.sums, r.sums, l.hash, r.hash);
    sums = added.sums;
    trace({ step: 16, level: level + 1,
      text: `Level ${level + 1}: yours is the ${right ? 'right' : 'left'} child; with its sibling ${hex(sibling.hash)} `
        + `the parent is ${hex(hash)}, its sums checked below 2^64.` });
  });
  return { hash, sums };
}

// ---- The whole check, as `verex por verify` makes it ----

/**
 * Verifies a proof file against a root file (each a string, or bytes as read from disk).
 * `attestKey`: the exchange's attest key to pin (64 hex digits or 32 bytes), or null: any
 * signer is then accepted, and the result says so (`pinned: false`). `account`: the account
 * the user expects, or null.
 *
 * Returns {ok: true, root, proof, verified, pinned, trace} or {ok: false, stage: 'root' |
 * 'proof', reason, detail, step, trace}; `trace` lists the steps done ({step, text}). Throws
 * only for a malformed `attestKey` (a caller's mistake, not a verdict).
 */
export function verifyFiles(proofData, rootData, { attestKey = null, account = null } = {}) {
  const key = typeof attestKey === 'string' ? pinnedKey(attestKey) : attestKey;
  const trace = [];
  const add = (entry) => trace.push(entry);
  let stage = 'root';
  try {
    // As verex reads them: both files first (size, UTF-8), then the root's checks, then the proof's.
    const rootText = atStep(1, () => decodeFile(rootData));
    stage = 'proof';
    const proofText = atStep(7, () => decodeFile(proofData));
    stage = 'root';
    const root = parseRoot(rootText);
    add({ step: 3, text: `The root file is a well-formed ${ROOT_FORMAT}: seq ${root.seq}, ${root.leafCount} leaves, `
      + `${root.assets.length} assets, each liability equal to Σequity − Σdebt.` });
    checkRoot(root, key);
    add({ step: 4, text: `Height ${root.height} fits ${root.leafCount} leaves.` });
    if (key) add({ step: 5, text: `The root's signer is the attest key you pinned, ${hex(key)}.` });
    add({ step: 6, text: `The attestation's signature over the root (seq, journal digest, state hash, root hash, `
      + `totals) is valid, by ${key ? 'the pinned' : 'the root’s own'} attest key ${hex(root.signer)}.` });
    stage = 'proof';
    const proof = parseProof(proofText);
    add({ step: 9, text: `The proof file is a well-formed ${PROOF_FORMAT}: account ${proof.account}, position ${proof.position}.` });
    const verified = checkProof(proof, root, account, add);
    return { ok: true, root, proof, verified, pinned: Boolean(key), trace };
  } catch (e) {
    if (!(e instanceof PorFault)) throw e;
    return { ok: false, stage, reason: e.reason, detail: e.detail, step: e.step, trace };
  }
}

/** An attest key to pin, from 64 hex digits (either case, white space around it ignored). */
export function pinnedKey(text) {
  const clean = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(clean)) throw new TypeError('an attest key is 64 hex digits');
  return fromHex(clean);
}

// ---- Reserves (docs/por.md section 9): for the page's table ----

/**
 * Parses `reserves.json` and checks its signature by its signer (the custody key; the page
 * shows which). Returns {seq, entries: [{asset, amount, chainPosition}], signer, signatureFault}.
 */
export function parseReserves(text) {
  const map = parseObject(decodeFile(text), 'reserves');
  checkKeys(map, ['format', 'seq', 'reserves', 'signer', 'signature'], RESERVES_FORMAT, 'reserves');
  const seq = integer(field(map, 'seq', 'reserves'), 'seq');
  const entries = array(field(map, 'reserves', 'reserves'), 'reserves').map((item, i) => {
    const what = `reserves[${i}]`;
    const m = object(item, what);
    const unknown = Object.keys(m).find((k) => !['asset', 'amount', 'chain_position'].includes(k));
    if (unknown !== undefined) fail('unknown_field', `${what} has a field \`${unknown}\``);
    const chainPosition = field(m, 'chain_position', what);
    if (typeof chainPosition !== 'string') fail('malformed', `${what}.chain_position is not a string`);
    return { asset: symbol(field(m, 'asset', what), `${what}.asset`), amount: amount(field(m, 'amount', what), `${what}.amount`),
      chainPosition };
  });
  const seen = new Set();
  for (const e of entries) {
    if (seen.has(e.asset)) fail('asset_mismatch', `${e.asset} is listed twice`);
    seen.add(e.asset);
  }
  const signer = hexField(field(map, 'signer', 'reserves'), 'signer', 32);
  const signature = hexField(field(map, 'signature', 'reserves'), 'signature', 64);
  const reserves = { seq, entries, signer, signature };
  reserves.signatureFault = signatureFault(signer, reservesSignedBytes(reserves), signature);
  return reserves;
}

// ---- Amounts for people ----

/** `units` (a BigInt, may be negative) in an asset with `decimals` places: "1,234.5". */
export function formatUnits(units, decimals) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return `${negative ? '−' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
