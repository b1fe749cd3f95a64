#!/usr/bin/env bash
# Offline checks of what an operator deploys, each by the tool made for it (dev/test.sh runs
# this; idempotent, a few seconds once the tools are there):
#   Containerfile           hadolint
#   deploy/ manifests       rendered by `kubectl kustomize` (base and parallel), then validated
#                           with kubernetes-validate --strict against Kubernetes 1.29 and the
#                           newest schema it ships; the example Secret and cronjob.yaml as well
#   deploy/prometheus       promtool check rules, promtool test rules (the alert unit tests)
#   deploy/grafana          every dashboard expression parsed by promtool
#   deploy/clowder          each Template rendered (tests/helpers/clowder.py, no `oc` needed),
#                           its ClowdApp and ClowdJobInvocation validated against the CRDs
# It installs what is missing: promtool with apt (Debian's prometheus package), the rest with
# pip from requirements/deploy-check.txt (pinned, hashed). The image build itself is
# dev/build-image.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'check-deploy: %s\n' "$*" >&2; }

if ! command -v promtool >/dev/null; then
  log "apt-get install prometheus (for promtool)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
    >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --require-hashes \
  -r requirements/deploy-check.txt

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log "hadolint Containerfile"
hadolint Containerfile

kubectl kustomize deploy >"$work/base.yaml"
kubectl kustomize deploy/parallel >"$work/parallel.yaml"
latest="$(kubernetes-validate --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p')"
for version in 1.29.0 "$latest"; do
  log "kubernetes-validate --strict -k $version"
  kubernetes-validate --quiet --strict -k "$version" \
    "$work/base.yaml" "$work/parallel.yaml" deploy/secret.example.yaml cronjob.yaml
done

log "Clowder templates against the ClowdApp and ClowdJobInvocation CRDs"
python3 -m tests.helpers.clowder deploy/clowder/clowdapp.yaml -p ENV_NAME=stage -p IMAGE_TAG=0.1.0
python3 -m tests.helpers.clowder deploy/clowder/backfill.yaml -p ENV_NAME=stage \
  -p IMAGE_TAG=0.1.0 -p INVOCATION=check -p FROM_OFFSET=0:100 -p UNTIL_OFFSET=0:200

log "promtool check rules / test rules"
promtool check rules deploy/prometheus/etl-rules.yaml
promtool test rules deploy/prometheus/etl-rules.test.yaml

log "promtool parses the dashboard's expressions"
python3 - deploy/grafana/etl-dashboard.json >"$work/dashboard-rules.yaml" <<'PY'
# Each expression as a recording rule, dashboard variables replaced by a value.
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
print("groups:\n  - name: dashboard\n    rules:")
for i, expr in enumerate(exprs):
    print(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(expr.replace('$job', 'etl'))}")
PY
promtool check rules "$work/dashboard-rules.yaml" | grep -v "^Checking"
log "ok"
