// A real published cycle, made by verex the way an exchange makes one: a journal (`verex run`),
// a PoR cycle (`verex por build`), the stress report (`verex risk`), custody's reserves
// (`verex por reserves`) and the published folder (`verex por publish`), page included.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { verex } from './support.mjs';

/** verex's development attest key (the vectors' too): what `--dev` signs roots with. */
export const DEV_ATTEST_KEY = '73021425e5dd64a7c7d0b4a10708eeb99ec64e200522027558adc6426c07ba34';

// Lending, a debt (a perp loss beyond account 2's USDC, carried by its BTC), the insurance
// fund, fees, resting orders and an empty account (4: no leaf).
const TXS = [
  { op: 'add_asset', symbol: 'USDC', decimals: 6 },
  { op: 'add_asset', symbol: 'BTC', decimals: 8, collateral_weight: '0.9', borrow_weight: '1.1' },
  { op: 'add_market', symbol: 'BTC-PERP', kind: 'perp', base: 'BTC', settle: 'USDC', tick: '0.1', step: '0.001', imf: '0.1', mmf: '0.05', maker_fee: '0', taker_fee: '0.001' },
  { op: 'create_account' }, { op: 'create_account' }, { op: 'create_account' }, { op: 'create_account' },
  { op: 'deposit', account: 1, asset: 'USDC', amount: '100000' },
  { op: 'deposit', account: 2, asset: 'BTC', amount: '1' },
  { op: 'deposit', account: 2, asset: 'USDC', amount: '20' },
  { op: 'deposit', account: 3, asset: 'USDC', amount: '100000' },
  { op: 'deposit', account: 0, asset: 'USDC', amount: '1000' },
  { op: 'mark', prices: { BTC: '100', 'BTC-PERP': '100' } },
  { op: 'lend', account: 1, asset: 'USDC', amount: '5000' },
  { op: 'place', account: 3, market: 'BTC-PERP', side: 'sell', type: 'limit', price: '100', qty: '1', tif: 'gtc' },
  { op: 'place', account: 2, market: 'BTC-PERP', side: 'buy', type: 'limit', price: '100', qty: '1', tif: 'ioc' },
  { op: 'mark', prices: { 'BTC-PERP': '70' } },
  { op: 'place', account: 1, market: 'BTC-PERP', side: 'buy', type: 'limit', price: '90', qty: '2', tif: 'gtc' },
  { op: 'deposit', account: 3, asset: 'BTC', amount: '0.5' },
  { op: 'withdraw', account: 3, asset: 'USDC', amount: '10' },
  { op: 'tick' },
];

function run(args, what) {
  const out = verex(args);
  if (out.status !== 0) throw new Error(`${what}: verex ${args.join(' ')} exited ${out.status}: ${out.stderr}`);
  return out;
}

/**
 * Publishes a cycle under `dir`. Returns {site, cycle, proofs}: the published folder, the
 * cycle's directory, and each account's proof as the exchange hands it to its owner
 * ({account: {file, text, salt}}).
 */
export function publishCycle(dir) {
  const input = join(dir, 'txs.jsonl');
  writeFileSync(input, TXS.map((tx) => JSON.stringify(tx)).join('\n'));
  const journal = join(dir, 'journal');
  const cycle = join(dir, 'cycle');
  const risk = join(dir, 'risk.json');
  const reserves = join(dir, 'reserves.json');
  const site = join(dir, 'site');
  run(['run', '--dev', '--input', input, '--journal', journal, '--limits', 'small'], 'run');
  run(['por', 'build', '--journal', journal, '--dev', '--out', cycle], 'por build');
  run(['risk', '--journal', journal, '--shocks=-10,-30,-50', '--out', risk], 'risk');
  // Custody holds what is owed to the users: the liability, plus the exchange's own.
  const root = JSON.parse(readFileSync(join(cycle, 'root.json'), 'utf8'));
  const amounts = root.assets.flatMap((a) => {
    const units = BigInt(a.liability) + BigInt(a.fees) + BigInt(a.insurance);
    const text = units.toString().padStart(a.decimals + 1, '0');
    return ['--amount', `${a.symbol}=${text.slice(0, text.length - a.decimals)}.${text.slice(text.length - a.decimals)}`];
  });
  run(['por', 'reserves', '--root', join(cycle, 'root.json'), '--dev', ...amounts, '--chain-position', 'test:1', '--out', reserves], 'por reserves');
  run(['por', 'publish', '--cycle', cycle, '--reserves', reserves, '--risk', risk, '--out', site, '--journal', journal], 'por publish');
  const proofs = {};
  for (const name of readdirSync(join(cycle, 'proofs'))) {
    const file = join(cycle, 'proofs', name);
    const text = readFileSync(file, 'utf8');
    const proof = JSON.parse(text);
    proofs[proof.account] = { file, text, salt: proof.salt };
  }
  return { site, cycle, root, proofs };
}
