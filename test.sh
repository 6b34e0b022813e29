#!/usr/bin/env bash
# Every test of verex, the README's test command: the Rust workspace (cargo test), then the
# Proof of Reserves verification page (web/) in node and in Debian's chromium (npm test).
# Installs what is missing first: nats-server (for the replication tests) and chromium
# (apt-get), and web/'s npm packages (npm ci, from web/package-lock.json). Needs a Rust
# toolchain and Node.js >= 20.19 with npm.
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo > /dev/null; then sudo "$@"; else
    echo "test.sh: run as root, or install it yourself: $*" >&2
    return 1
  fi
}

echo "== what the tests need"
if ! command -v node > /dev/null || ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "test.sh: web/'s tests need Node.js >= 20.19 and npm (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if ! command -v nats-server > /dev/null && [ ! -x /usr/sbin/nats-server ]; then
  # The replication tests (tools/tests/replication.rs) start real servers on 127.0.0.1.
  echo "nats-server is missing: apt-get install -y nats-server"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server > /dev/null
fi
if ! command -v chromium > /dev/null; then
  echo "chromium is missing: apt-get install -y chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
echo "node $(node --version), npm $(npm --version), $(chromium --version 2> /dev/null | head -n 1)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

echo "== Rust: cargo test --workspace --locked"
cargo test --workspace --locked

echo "== web/: npm test (the page's verifier in node and chromium, against verex)"
(cd web && npm test)
