#!/usr/bin/env bash
# Installs what the tests need beside the Rust toolchain: moto (the local AWS emulator, server
# mode), the official Stripe Python library, and the official Stripe Node library. Idempotent:
# re-running it on a prepared machine takes well under a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import moto, stripe, boto3, flask" >/dev/null 2>&1 || [ ! -x "$venv/bin/moto_server" ]; then
  echo "setup: installing moto[server], boto3 and stripe into .venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==5.2.5" "boto3" "stripe==16.1.0"
fi

node_dir="$root/tests/support/node"
if [ ! -f "$node_dir/node_modules/stripe/package.json" ] || [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing the stripe and playwright-core npm packages" >&2
    (cd "$node_dir" && npm install --no-audit --no-fund --no-package-lock --silent)
  else
    echo "setup: npm not found; the Stripe Node cross-check tests will fail" >&2
  fi
fi

# The console's browser test drives Debian's Chromium headless (through playwright-core, which
# downloads no browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing chromium (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
      || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  else
    echo "setup: chromium not found and cannot be installed here (needs apt-get as root); the console browser test will fail" >&2
  fi
fi

# The infrastructure checks' tools (cfn-lint, aws-sam-translator, checkov); the end-to-end test
# that deploys the template into moto uses the translator too.
bash "$root/infra/checks/setup.sh"
