#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, start the real local services, lint,
# type-check, run every test, stop the services this script started (and only those). Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's virtual environment (.venv): the locked versions (hashes checked), then the
# package itself on top, without resolving again.
. dev/venv.sh requirements/dev.txt
# The terminal tests drive `etl run` in tmux.
if ! command -v tmux >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
fi

# Services already running (the demo's, another shell's) are used and left running; only the
# ones this script starts are stopped at the end.
ours=()
cleanup() { [ ${#ours[@]} -eq 0 ] || dev/services.sh stop "${ours[@]}" || true; }
trap cleanup EXIT
if [ -z "${ETL_KAFKA__BOOTSTRAP_SERVERS:-}" ] || [ -z "${ETL_POSTGRES__DSN:-}" ] ||
  [ -z "${ETL_PUSHGATEWAY__URL:-}" ]; then
  before="$(dev/services.sh running)"
  for name in postgres kafka pushgateway; do
    grep -qx "$name" <<<"$before" || ours+=("$name")
  done
  service_env="$(dev/services.sh start)" # a failed start stops the script here
  eval "$service_env"
  unset ETL_KAFKA__TOPIC ETL_KAFKA__GROUP_ID # the demo's, if any: tests choose their own
fi

ruff format --check .
ruff check .
mypy
# The compiled core's own rules and lints (pip above already built it for Python).
cargo fmt --manifest-path native/Cargo.toml --check
cargo clippy --manifest-path native/Cargo.toml --all-targets --all-features --quiet -- -D warnings
cargo test --manifest-path native/Cargo.toml --quiet
bash dev/check-deploy.sh # Containerfile, manifests, alerts, dashboard
# Coverage includes the `etl` subprocesses the integration tests start; CI holds it to a floor.
cov=(--cov --cov-report=term)
[ "${CI:-}" = true ] && cov+=(--cov-fail-under=90)
python3 -m pytest "${cov[@]}" "$@"
