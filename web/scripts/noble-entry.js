// What the page takes from the noble libraries: BLAKE3 (default and keyed mode) and ed25519.
// scripts/bundle.mjs bundles exactly this into vendor/noble.js.
export { blake3 } from '@noble/hashes/blake3.js';
export { ed25519 } from '@noble/curves/ed25519.js';
