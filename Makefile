# Two commands on a fresh machine: `make run` (default search) and `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installed before the project so the project's torch range is already met. Here pip finds a
# local CPU build; elsewhere PyPI's Linux torch is the CUDA build, and a CPU-only machine wants
# make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
# The tested environment, which every cluster node installs (cluster.yaml, cluster-onprem.yaml).
# `make install` takes it as constraints, so the suite runs on the versions the nodes get; its
# torch pin has no build tag, so TORCH_SPEC's build (CPU or CUDA) satisfies it.
LOCK := conf/cluster/requirements.lock

.PHONY: install run test lock clean

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m tuner $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# After changing the environment in $(VENV) (a new dependency, `pip install -U ...`): the whole
# suite on it as it is, then its run-time packages written down as the new lock.
lock:
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python .ci/lock.py $(LOCK)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
