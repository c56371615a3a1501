# kbox developer commands. The README documents `make run` and `make test`; CI runs .ci/run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench docker clean

install: $(STAMP)

# Re-install when the dependency list changes; kbox itself is installed editable.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

# The main job: `kbox start` (Docker runtime, default addons) in the background; returns when the
# node is Ready and the kube-system pods Run, with kubectl pointed at it. `kbox stop` ends it.
run: install
	-@bash scripts/ensure-docker.sh
	$(BIN)/kbox start

# Brings up a Docker engine when it can (root with apt); Docker tests fail under CI=true without one
# and are skipped, with the reason printed, elsewhere. Two pytest-xdist workers; tests/e2e/conftest.py
# keeps the Docker tests whose clusters run kube-proxy in one worker and the other Docker tests in one.
test: install
	-@bash scripts/ensure-docker.sh
	$(BIN)/pytest -q -rs --durations=10 -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff check kbox tests bench
	$(BIN)/ruff format --check kbox tests bench
	$(BIN)/mypy kbox

format: install
	$(BIN)/ruff check --fix kbox tests bench
	$(BIN)/ruff format kbox tests bench

bench: install
	$(BIN)/python bench/store_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/api_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/scheduler_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/fixture_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/controllers_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/kubelet_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/start_bench.py --write BENCHMARKS.md
	$(BIN)/python bench/proxy_bench.py --write BENCHMARKS.md

docker:
	bash scripts/ensure-docker.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
