#!/usr/bin/env bash
# Runs every test: installs what the tests need (moto, the Stripe libraries), then the Rust
# workspace tests (unit tests and the one integration-test binary, which starts moto and the ERP
# sandbox itself), then the infrastructure checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tests/setup.sh
cargo test --workspace
if [ -x infra/checks/run.sh ]; then
  bash infra/checks/run.sh
fi
