#!/usr/bin/env bash
# The job end to end on local services: start them, create the schema and a topic, produce
# sample messages, run `etl run`, show the rows loaded, the rejections and the metrics pushed.
# The services keep running afterwards; stop them with `dev/services.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Never wait for a key: no pager, whatever the terminal or ~/.psqlrc say. Every line fits in 100
# columns (dev/check-fresh-clone.sh holds it to that).
export PAGER=cat PSQL_PAGER=cat

. dev/venv.sh requirements/runtime.txt # the project's .venv, from the lock
service_env="$(dev/services.sh start)" # a failed start stops the script here
eval "$service_env"
export ETL_KAFKA__TOPIC="${ETL_KAFKA__TOPIC:-ccx.ocp.results.demo}"
export ETL_KAFKA__GROUP_ID="${ETL_KAFKA__GROUP_ID:-etl-demo}"
export ETL_PUSHGATEWAY__JOB=etl-demo
# `dev/services.sh env` prints these too from now on, so `etl plan` and `etl runs` work next.
state="${ETL_SERVICES_DIR:-/tmp/etl-services}"
printf 'export ETL_KAFKA__TOPIC=%q\nexport ETL_KAFKA__GROUP_ID=%q\n' \
  "$ETL_KAFKA__TOPIC" "$ETL_KAFKA__GROUP_ID" >"$state/demo.env"

etl db migrate --to latest
python3 dev/samples.py "$ETL_KAFKA__TOPIC"

echo "== etl run"
set +e
etl run
code=$?
set -e
echo "== exit code: $code"
echo "== new_reports (latest 5)"
psql -X -P pager=off "$ETL_POSTGRES__DSN" -c "SELECT org_id, account_number AS account, cluster,
  updated_at::timestamp(0) AS updated_at, kafka_partition || ':' || kafka_offset AS at,
  length(report) AS bytes FROM new_reports ORDER BY new_reports.updated_at DESC LIMIT 5"
echo "== rejected_messages"
psql -X -P pager=off "$ETL_POSTGRES__DSN" -c "SELECT kafka_partition || ':' || kafka_offset AS at,
  reason, left(detail, 60) AS detail
  FROM rejected_messages ORDER BY rejected_at DESC, kafka_partition, kafka_offset LIMIT 10"
echo "== metrics on the Pushgateway"
curl -s "$ETL_PUSHGATEWAY__URL/metrics" | grep '^etl_' | grep 'job="etl-demo"' | grep -v ' 0$' || true
exit "$code"
