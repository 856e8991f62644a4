#!/usr/bin/env bash
# Benchmark the API under gunicorn with wrk, against N task records loaded straight into Redis.
#   bash bench/api_wrk.sh 10000      (or 1000000)
# Uses a throwaway Redis namespace and queue prefix, both deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-16}
PY=.venv/bin/python
RUN=$(date +%s%N | tail -c 7)
NS="bench-$RUN"
PREFIX="bench${RUN}_"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN="bench-token-$RUN-0123456789abcdef"
WORK=$(mktemp -d)
API_PID=""

cleanup() {
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null || true
  $PY -m bench.load_records --namespace "$NS" --delete
  $PY - "$PREFIX" <<'PYEOF'
import sys, pika
connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
from pipeline.task import QUEUES
for queue in QUEUES:
    for name in (sys.argv[1] + queue, sys.argv[1] + queue + ".DQ", sys.argv[1] + queue + ".XQ"):
        channel = connection.channel()
        channel.queue_delete(name)
        channel.close()
connection.close()
PYEOF
  rm -rf "$WORK"
}
trap cleanup EXIT

$PY -m bench.load_records --namespace "$NS" --count "$COUNT" --queue-prefix "$PREFIX" --ids-file "$WORK/ids.json"

CLAW_NAMESPACE="$NS" CLAW_QUEUE_PREFIX="$PREFIX" CLAW_API_TOKENS="$TOKEN:admin" \
  $PY -c 'from api.cli import run_api; run_api("127.0.0.1:'"$PORT"'", 2)' >"$WORK/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.2; done

ID_LIST=$($PY -c 'import json,sys; print(",".join(json.dumps(i) for i in json.load(open(sys.argv[1]))))' "$WORK/ids.json")
cat >"$WORK/status.lua" <<LUA
local ids = {$ID_LIST}
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function() return wrk.format("GET", "/api/v1/tasks/status/" .. ids[math.random(#ids)]) end
LUA
cat >"$WORK/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
cat >"$WORK/submit.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"channel": "email", "recipient": "bench@example.com", "subject": "hi", "body": "hello"}'
LUA

bench() {  # name, lua script, path
  echo "== $1 ($COUNT records)"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "http://127.0.0.1:$PORT$3" \
    | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
}
bench status "$WORK/status.lua" /
bench "list limit=50" "$WORK/get.lua" "/api/v1/tasks/list?limit=50"
bench "list state=FAILURE limit=50" "$WORK/get.lua" "/api/v1/tasks/list?state=FAILURE&limit=50"
bench stats "$WORK/get.lua" /api/v1/tasks/stats
bench "submit (notifications/send)" "$WORK/submit.lua" /api/v1/tasks/notifications/send
