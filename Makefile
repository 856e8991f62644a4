# claw-pipeline: `make run` starts the whole stack, `make test` proves it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CLAW := $(VENV)/bin/claw-pipeline

.PHONY: install services test-deps run test test-all test-reliability test-ha test-redis-cluster bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[knowledge,bench,test,tracing]'
	$(PY) -m pip install -q -e clients/python
	touch $@

services:
	@bash infra/dev/ensure-services.sh

test-deps:
	@bash infra/dev/test-deps.sh

run: install services
	$(CLAW) run

test: install services test-deps
	$(PY) -m pytest -m "not slow and not ha"

test-all: install services test-deps
	$(PY) -m pytest

test-reliability: install services test-deps
	CLAW_RELIABILITY=full $(PY) -m pytest tests/reliability -p no:cacheprovider
	$(PY) -m tests.reliability.report

# Failover at full scale on services of the tests' own (free ports, data under /tmp):
# Redis master + replica + 3 Sentinels, a 3-node RabbitMQ cluster.
test-ha: install services test-deps
	CLAW_RELIABILITY=full $(PY) -m pytest tests/ha tests/reliability/test_redis_failover.py tests/reliability/test_rabbitmq_node_loss.py -p no:cacheprovider
	$(PY) -m tests.reliability.report

# The engine and API suites against a 3-master Redis Cluster of their own (free ports, data under /tmp;
# the state store in 16 shards), then slots moved under load.
test-redis-cluster: install services test-deps
	$(PY) -m tests.redis_cluster tests/engine tests/api tests/ha/test_redis_cluster.py -m "not slow" -p no:cacheprovider
	CLAW_RELIABILITY=full $(PY) -m pytest tests/reliability/test_redis_cluster_reshard.py -p no:cacheprovider
	$(PY) -m tests.reliability.report

bench: install services test-deps
	$(PY) -m bench.run
	$(PY) -m bench.streams
	$(PY) -m bench.observability

clean:
	rm -rf $(VENV) var *.egg-info
