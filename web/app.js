// The page: shows the cycle published beside it (root.json, index.json, reserves.json,
// risk.json) and checks a user's proof against it with verifier.js, in this browser. It reads
// only files of its own folder.

import {
  checkRoot, formatUnits, parseReserves, parseRoot, pinnedKey, rootSignedBytes, toHex, userHash, verifyFiles,
} from './verifier.js';

const $ = (id) => document.getElementById(id);

/** The steps of docs/por.md section 7, as the page names them. */
const STEPS = {
  1: 'The root file is read',
  2: "The root file's fields and format",
  3: "The root file's values",
  4: "The tree's height fits its leaf count",
  5: 'The root is signed by the pinned attest key',
  6: "The attestation's signature",
  7: 'The proof file is read',
  8: "The proof file's fields and format",
  9: "The proof file's values",
  10: 'The proof is for your account',
  11: 'The proof is for this cycle',
  12: 'The proof covers the cycle’s assets',
  13: 'The proof has a salt',
  14: "The path is as long as the tree is high",
  15: 'The leaf is one of the tree’s leaves',
  16: 'Your leaf, then every node up to the root, with checked sums',
  17: 'The computed root is the published root',
  18: 'The computed sums are the published totals',
};

/** Each named reason, said plainly. */
const REASONS = {
  empty_input: 'The file is empty.',
  malformed: 'The file is not one complete JSON object (truncated, or not a proof file).',
  unknown_format: 'The file is not a verex Proof of Reserves file of a format this page knows.',
  missing_field: 'A field the format requires is missing.',
  unknown_field: 'The file has a field the format does not have. A verifier never ignores input: a leaf hash handed in beside the balances is refused this way.',
  not_a_number: 'A number is not written in its one canonical form.',
  negative_value: 'A balance or sum is negative. Balances are never negative; a negative sum would cancel other users’ balances.',
  out_of_range: 'A value is beyond its range (balances and sums must be below 2^64).',
  bad_hex: 'A hash, key, salt or signature is not lower-case hex of its exact length.',
  bad_symbol: 'An asset symbol is not a valid symbol.',
  missing_salt: 'The proof has no salt, or an all-zero one: without a secret salt your leaf could be guessed or linked.',
  asset_mismatch: 'The proof’s assets (names, order or count) are not the cycle’s.',
  wrong_cycle: 'The proof belongs to another cycle (another seq or root) than the one published here.',
  wrong_depth: 'The path is not as long as the tree is high (or the root’s height does not fit its leaf count): a node could be passed off as a leaf.',
  bad_position: 'The leaf position is beyond the tree’s leaves.',
  sum_overflow: 'A sum overflows 2^64: wrapping around would hide liabilities.',
  root_mismatch: 'Hashing your balances and salt up the path does not give the published root: the balances this proof states are not in the signed tree.',
  totals_mismatch: 'The sums up the path are not the published totals.',
  account_mismatch: 'The proof is for another account than the one you entered.',
  wrong_signer: 'The root is signed by another key than the attest key you pinned.',
  bad_signature: 'The root’s signature does not verify: the root was changed after it was signed.',
  liability_mismatch: 'A published liability is not equity − debt.',
};

const cycle = { rootBytes: null, root: null, index: null };
let proofSource = null; // {bytes, name} of a loaded or found file; null: the text area

// ---- small DOM helpers (text only: no file's content is ever parsed as HTML) ----

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const code = (text) => el('code', { class: 'hex' }, text);

function fact(dl, term, ...value) {
  dl.append(el('dt', {}, term), el('dd', {}, ...value));
}

async function fetchBytes(name) {
  try {
    const response = await fetch(name, { cache: 'no-store' });
    return response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
  } catch {
    return null;
  }
}

const decode = (bytes) => new TextDecoder().decode(bytes);

// ---- the cycle ----

function journalTime(index) {
  const ns = index && typeof index.journal_ts_ns === 'string' && /^[0-9]{1,20}$/.test(index.journal_ts_ns)
    ? BigInt(index.journal_ts_ns) : null;
  if (ns === null) return 'not published';
  const date = new Date(Number(ns / 1000000n));
  return `${date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC (the journal’s time stamp at this seq)`;
}

/** Whether attestation.json is the root's attestation: its signed bytes, signer and signature. */
function attestationFact(root, attestation) {
  if (!attestation) return 'not published';
  const same = attestation.seq === root.seq
    && attestation.signed_bytes === toHex(rootSignedBytes(root))
    && attestation.signer === toHex(root.signer)
    && attestation.signature === toHex(root.signature);
  return same ? 'attestation.json holds the root’s signed bytes, signer and signature'
    : el('span', { class: 'error' }, 'attestation.json is not the root’s attestation (its signed bytes, signer or signature differ)');
}

function showCycle(root, index, signature, attestation) {
  const dl = $('cycle');
  dl.replaceChildren();
  fact(dl, 'Journal position (seq)', String(root.seq));
  fact(dl, 'Time', journalTime(index));
  fact(dl, 'State hash', code(toHex(root.stateHash)));
  fact(dl, 'Journal digest', code(toHex(root.journalDigest)));
  fact(dl, 'Root hash', code(toHex(root.rootHash)));
  fact(dl, 'Accounts in the tree', `${root.leafCount} (a tree of height ${root.height})`);
  fact(dl, 'Attest key (signer)', code(toHex(root.signer)));
  fact(dl, 'Attestation signature', signature);
  fact(dl, 'Attestation file', attestationFact(root, attestation));
}

function percent(numerator, denominator) {
  if (denominator <= 0n) return '—';
  const basis = (numerator * 10000n) / denominator;
  return `${basis / 100n}.${String(basis % 100n).padStart(2, '0')} %`;
}

function showSolvency(root, reserves) {
  const body = $('solvency').tBodies[0];
  body.replaceChildren();
  for (const asset of root.assets) {
    const d = asset.decimals;
    const entry = reserves?.entries.find((e) => e.asset === asset.symbol);
    const held = entry ? entry.amount : null;
    const cells = [
      el('th', { scope: 'row' }, asset.symbol),
      el('td', {}, formatUnits(asset.equity, d)),
      el('td', {}, formatUnits(asset.debt, d)),
      el('td', {}, formatUnits(asset.liability, d)),
      el('td', {}, held === null ? '—' : formatUnits(held, d)),
      el('td', {}, held === null ? '—' : percent(held, asset.liability)),
      el('td', {}, held === null ? '—' : formatUnits(asset.equity > held ? asset.equity - held : 0n, d)),
      el('td', held !== null && held < asset.liability ? { class: 'short' } : {},
        held === null ? '—' : (held < asset.liability ? `short by ${formatUnits(asset.liability - held, d)}` : formatUnits(held - asset.liability, d))),
      el('td', {}, formatUnits(asset.fees + asset.insurance, d)),
    ];
    body.append(el('tr', { 'data-asset': asset.symbol }, ...cells));
  }
}

function reservesStatus(root, reserves, error) {
  const status = $('reserves-status');
  if (error) {
    status.textContent = `The reserves file cannot be read: ${error}`;
    status.className = 'error';
  } else if (!reserves) {
    status.textContent = 'No reserves are published beside this cycle.';
  } else if (reserves.seq !== root.seq) {
    status.textContent = `The reserves are for seq ${reserves.seq}, not this cycle's seq ${root.seq}: they are not shown against it.`;
    status.className = 'error';
  } else if (reserves.signatureFault) {
    status.textContent = `The reserves' signature does not verify (${reserves.signatureFault}): they are not shown.`;
    status.className = 'error';
  } else {
    status.replaceChildren('Reserves for this seq, signed by the custody key ', code(toHex(reserves.signer)),
      ' (the signature checked in this browser).');
  }
}

function showStress(root, risk) {
  const list = $('stress');
  list.replaceChildren();
  const shocks = risk && risk.seq === root.seq && Array.isArray(risk.shocks) ? risk.shocks : null;
  if (!shocks) {
    list.append(el('li', {}, risk ? `The stress report is for seq ${risk.seq}, not this cycle.` : 'No stress report is published beside this cycle.'));
    return;
  }
  for (const shock of shocks) list.append(el('li', {}, typeof shock.headline === 'string' ? shock.headline : JSON.stringify(shock.move_percent)));
}

async function loadCycle() {
  const status = $('load-status');
  const [rootBytes, indexBytes, reservesBytes, riskBytes, attestationBytes] = await Promise.all(
    ['root.json', 'index.json', 'reserves.json', 'risk.json', 'attestation.json'].map(fetchBytes),
  );
  if (!rootBytes) {
    status.textContent = 'This folder has no root.json: there is no cycle to check against.';
    status.className = 'error';
    return;
  }
  let root;
  try {
    root = parseRoot(decode(rootBytes));
  } catch (e) {
    status.textContent = `The published root.json cannot be read: ${e.message}`;
    status.className = 'error';
    cycle.rootBytes = rootBytes;
    return;
  }
  let signature = 'valid (checked in this browser, against the key the root names)';
  try {
    checkRoot(root, null);
  } catch (e) {
    signature = el('span', { class: 'error' }, `DOES NOT HOLD: ${e.message}`);
  }
  const json = (bytes) => { try { return bytes ? JSON.parse(decode(bytes)) : null; } catch { return null; } };
  cycle.rootBytes = rootBytes;
  cycle.root = root;
  cycle.index = json(indexBytes);
  showCycle(root, cycle.index, signature, json(attestationBytes));
  let reserves = null;
  let reservesError = null;
  if (reservesBytes) {
    try { reserves = parseReserves(reservesBytes); } catch (e) { reservesError = e.message; }
  }
  reservesStatus(root, reserves, reservesError);
  showSolvency(root, reserves && !reservesError && reserves.seq === root.seq && !reserves.signatureFault ? reserves : null);
  showStress(root, json(riskBytes));
  status.textContent = `Cycle at seq ${root.seq} loaded: ${root.leafCount} accounts, ${root.assets.length} assets.`;
  document.body.dataset.cycle = 'loaded';
}

// ---- the check ----

function readOptions() {
  const error = $('form-error');
  error.textContent = '';
  const accountText = $('account').value.trim();
  const keyText = $('attest-key').value.trim();
  let account = null;
  let attestKey = null;
  if (accountText !== '') {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(accountText) || Number(accountText) > Number.MAX_SAFE_INTEGER) {
      error.textContent = 'Your account id is a whole number, like 42.';
      $('account').focus();
      return null;
    }
    account = Number(accountText);
  }
  if (keyText !== '') {
    try {
      attestKey = pinnedKey(keyText);
    } catch {
      error.textContent = "The exchange's attest key is 64 hex digits.";
      $('attest-key').focus();
      return null;
    }
  }
  return { account, attestKey };
}

function showVerdict(result, ms) {
  const section = $('result');
  section.hidden = false;
  section.dataset.verdict = result.ok ? 'ok' : 'fail';
  section.dataset.reason = result.ok ? '' : result.reason;
  section.dataset.ms = ms.toFixed(2);
  section.className = result.ok ? 'holds' : 'fails';
  const warning = $('verdict-warning');
  warning.hidden = true;
  const wrap = $('balances-wrap');
  wrap.hidden = true;
  if (result.ok) {
    const { root, verified } = result;
    $('verdict').textContent = '✓ Your balances are included';
    $('verdict-detail').textContent = `Account ${verified.account}'s equity and debt below are in the tree whose totals the exchange `
      + `signed at journal seq ${root.seq}. Checked in this browser in ${ms.toFixed(1)} ms.`;
    if (!result.pinned) {
      warning.hidden = false;
      warning.replaceChildren('No attest key pinned: any signer was accepted. The root is signed by ', code(toHex(root.signer)),
        '. Compare it with the attest key the exchange publishes elsewhere, or enter that key above to pin it.');
    }
    const body = $('balances').tBodies[0];
    body.replaceChildren(...root.assets.map((asset, i) => el('tr', {},
      el('th', { scope: 'row' }, asset.symbol),
      el('td', {}, formatUnits(verified.equity[i], asset.decimals)),
      el('td', {}, formatUnits(verified.debt[i], asset.decimals)),
      el('td', {}, formatUnits(asset.equity, asset.decimals)),
      el('td', {}, formatUnits(asset.debt, asset.decimals)))));
    wrap.hidden = false;
  } else {
    const file = result.stage === 'root' ? 'the published root file' : 'your proof file';
    $('verdict').textContent = `✗ Not verified: step ${result.step} failed (${result.reason})`;
    $('verdict-detail').textContent = `${REASONS[result.reason] ?? ''} In ${file}: ${result.detail}.`;
  }
  const steps = $('steps');
  steps.replaceChildren();
  for (const entry of result.trace) {
    steps.append(el('li', { class: 'done', value: String(entry.step) },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, '✓ '), el('strong', {}, `${STEPS[entry.step]}: `), entry.text));
  }
  if (!result.ok) {
    steps.append(el('li', { class: 'failed', value: String(result.step) },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, '✗ '), el('strong', {}, `${STEPS[result.step]}: failed, `),
      `${result.reason}: ${result.detail}`));
  }
  $('steps-details').open = !result.ok;
  section.focus();
}

function verify() {
  const options = readOptions();
  if (!options) return;
  if (!cycle.rootBytes) {
    $('form-error').textContent = 'There is no published root to check against.';
    return;
  }
  const proof = proofSource ? proofSource.bytes : $('proof-text').value;
  const started = performance.now();
  const result = verifyFiles(proof, cycle.rootBytes, options);
  showVerdict(result, performance.now() - started);
}

async function loadFile(file) {
  proofSource = { bytes: new Uint8Array(await file.arrayBuffer()), name: file.name };
  $('proof-text').value = new TextDecoder().decode(proofSource.bytes.subarray(0, 1 << 20));
  verify();
}

async function findProof() {
  const status = $('find-status');
  const accountText = $('find-account').value.trim();
  const saltText = $('find-salt').value.trim().toLowerCase();
  if (!/^(0|[1-9][0-9]{0,15})$/.test(accountText) || Number(accountText) > Number.MAX_SAFE_INTEGER) {
    status.textContent = 'Your account id is a whole number, like 42.';
    return;
  }
  if (!/^[0-9a-f]{64}$/.test(saltText)) {
    status.textContent = 'Your salt is 64 hex digits.';
    return;
  }
  const salt = Uint8Array.from(saltText.match(/../g), (h) => parseInt(h, 16));
  const name = `proofs/${toHex(userHash(BigInt(accountText), salt))}.json`;
  const bytes = await fetchBytes(name);
  if (!bytes) {
    status.textContent = `No proof is published under ${name}: check your account id and salt.`;
    return;
  }
  status.textContent = `Found ${name}.`;
  proofSource = { bytes, name };
  $('proof-text').value = decode(bytes);
  if ($('account').value.trim() === '') $('account').value = accountText;
  verify();
}

function wire() {
  $('check').addEventListener('submit', (event) => {
    event.preventDefault();
    verify();
  });
  $('proof-file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) loadFile(file);
  });
  $('proof-text').addEventListener('input', () => { proofSource = null; });
  $('proof-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      verify();
    }
  });
  $('find-button').addEventListener('click', findProof);
  for (const id of ['find-account', 'find-salt']) {
    $(id).addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        findProof();
      }
    });
  }
}

wire();
loadCycle();
