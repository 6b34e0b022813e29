// Shared by the tests: where things are, the test vectors, and the verex binary.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = join(WEB, '..');
/** The shared test vectors `verex por vectors` writes (docs/por.md section 13). */
export const VECTORS = join(REPO, 'tools', 'tests', 'data', 'por');

/** The files of the page: what `verex por publish` copies (tools/src/cmd/por/publish.rs embeds them). */
export const PAGE_FILES = ['index.html', 'style.css', 'app.js', 'verifier.js', 'vendor/noble.js'];

/** cases.json's cases: {name, attack, proof, root, attest_key, account, expect, reason}. */
export function vectorCases() {
  return JSON.parse(readFileSync(join(VECTORS, 'cases.json'), 'utf8')).cases;
}

export const vectorFile = (name) => readFileSync(join(VECTORS, name));

let binary;
/**
 * The verex binary of this checkout, built (debug, as `cargo test` builds it) if it is not
 * current: `VEREX_BIN` overrides.
 */
export function verexBinary() {
  if (process.env.VEREX_BIN) return process.env.VEREX_BIN;
  if (!binary) {
    execFileSync('cargo', ['build', '--locked', '--quiet', '-p', 'verex-tools', '--bin', 'verex'], {
      cwd: REPO,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const metadata = JSON.parse(
      execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps', '--locked'], { cwd: REPO, maxBuffer: 1 << 26 }),
    );
    binary = join(metadata.target_directory, 'debug', 'verex');
  }
  return binary;
}

/** Runs verex; returns {status, stdout, stderr}. */
export function verex(args) {
  const out = spawnSync(verexBinary(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (out.error) throw out.error;
  return { status: out.status, stdout: out.stdout, stderr: out.stderr };
}

/**
 * `verex por verify` on files: 'ok' or the named reason (from `error: <file>: <reason>: …`),
 * and which file it names.
 */
export function cliVerdict({ proof, root, attestKey, account }) {
  const args = ['por', 'verify', '--proof', proof, '--root', root];
  if (attestKey) args.push('--attest-pubkey', attestKey);
  if (account !== null && account !== undefined) args.push('--account', String(account));
  const out = verex(args);
  if (out.status === 0) return { verdict: 'ok', file: null };
  for (const file of [proof, root]) {
    const prefix = `error: ${file}: `;
    const line = out.stderr.split('\n').find((l) => l.startsWith(prefix));
    if (line) return { verdict: line.slice(prefix.length).split(':')[0], file: file === proof ? 'proof' : 'root' };
  }
  throw new Error(`verex por verify exited ${out.status} without a named reason: ${out.stderr}`);
}
