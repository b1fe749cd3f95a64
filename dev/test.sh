#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, start the real local services, lint,
# type-check, run every test, stop what this script started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

started=0
if [ -z "${ETL_KAFKA__BOOTSTRAP_SERVERS:-}" ] || [ -z "${ETL_POSTGRES__DSN:-}" ] ||
  [ -z "${ETL_PUSHGATEWAY__URL:-}" ]; then
  started=1
  service_env="$(dev/services.sh start)" # a failed start stops the script here
  eval "$service_env"
fi
cleanup() { [ "$started" = 1 ] && dev/services.sh stop || true; }
trap cleanup EXIT

ruff format --check .
ruff check .
mypy
# The compiled core's own rules and lints (pip above already built it for Python).
cargo fmt --manifest-path native/Cargo.toml --check
cargo clippy --manifest-path native/Cargo.toml --all-targets --all-features --quiet -- -D warnings
cargo test --manifest-path native/Cargo.toml --quiet
python3 -m pytest "$@"
