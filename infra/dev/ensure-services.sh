#!/usr/bin/env bash
# Make sure the local RabbitMQ (with its management UI) and Redis answer;
# start whichever does not. Used by `make run`, `make test` and .ci/run.
set -euo pipefail
export ERL_EPMD_ADDRESS=127.0.0.1   # keep epmd on loopback

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Redis does not answer on 127.0.0.1:6379; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "RabbitMQ does not answer; starting it (rabbitmq-server -detached)"
  rabbitmq-server -detached || true
  # -detached returns before the node is up: wait for it.
  for _ in $(seq 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 2; done
fi
rabbitmqctl -q await_startup >/dev/null

# The local broker's default user is what every process and test logs in with:
# put it back if something removed it (a reset node, a misbehaving script).
if ! rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
  echo "RabbitMQ's guest user does not log in; restoring it"
  rabbitmqctl -q add_user guest guest >/dev/null 2>&1 || rabbitmqctl -q change_password guest guest >/dev/null
  rabbitmqctl -q set_user_tags guest administrator >/dev/null
  rabbitmqctl -q set_permissions -p / guest ".*" ".*" ".*" >/dev/null
fi

if ! rabbitmq-plugins -q list -e rabbitmq_management 2>/dev/null | grep -q rabbitmq_management; then
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null
fi
for _ in $(seq 30); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break; sleep 1
done
