# npsloop — the two commands are `make run` and `make test`; everything else helps.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# uv from the PATH if there is one, else installed into .tools/ with nothing but Python.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help install browser smtp-sink kafka run up down token test test-kafka test-unit test-integration test-e2e lint format contracts clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet 'uv>=0.5'

$(VENV)/.installed: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml tools/checkov/uv.lock
	$(UV) sync --all-packages --frozen
	# checkov for tests/contract/test_deploy.py, in its own locked environment (its dependencies
	# clash with uv.lock's; see tools/checkov/pyproject.toml).
	$(UV) sync --frozen --project tools/checkov
	@touch $@

# What running needs, and no more: the services, the kit and its embedded dev stack, without
# the development toolchain (mypy, ruff, hadolint, kubectl, checkov…) that `make test` and
# `make lint` add. `--inexact` keeps that toolchain when it is already there.
$(VENV)/.runtime: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --all-packages --frozen --no-dev --inexact
	@touch $@

install: $(VENV)/.installed ## create .venv and install the workspace and its development tools (uv, from uv.lock)

# Apache Kafka's jars from Maven Central into tools/kafka/target/lib (Java 17+ and Maven);
# only for NPSLOOP_BROKER=apache-kafka and NPSLOOP_TEST_INFRA=apache-kafka, which also fetch
# them by themselves when they are missing (nps_kit.devstack.kafka.install).
tools/kafka/target/lib/.installed: tools/kafka/pom.xml
	rm -rf tools/kafka/target/lib tools/kafka/target/cds
	cd tools/kafka && mvn -B -q -Dstyle.color=never package
	@touch $@

kafka: tools/kafka/target/lib/.installed ## fetch Apache Kafka (Maven) for NPSLOOP_BROKER=apache-kafka

run: $(VENV)/.runtime ## start everything in the foreground: broker, PostgreSQL, SMTP sink, identity provider, four services and the console
	$(PY) -m nps_kit.devstack run

up: $(VENV)/.runtime ## start everything in the background; returns once every service is ready
	$(PY) -m nps_kit.devstack up

down: ## stop what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m nps_kit.devstack down; fi

# `make -s token USER=alex@example.com [ROLE=agent]` or `make -s token CLIENT=bi-dashboard`:
# an access token of the dev identity provider, and nothing else (for curl's Authorization).
token: $(VENV)/.runtime ## print a dev access token: USER=<email> [ROLE=viewer|agent|lead|admin], or CLIENT=<id>
	@$(PY) -m nps_kit.devstack token $(if $(CLIENT),--client "$(CLIENT)",--user "$(USER)" $(if $(ROLE),--role "$(ROLE)"))

browser: ## Chromium and chromedriver for the console's browser tests (apt-get, when missing)
	@tools/browser.sh

smtp-sink: ## Postfix's smtp-sink for notify's SMTP tests and the benches (apt-get, when missing)
	@tools/smtp-sink.sh

test: install browser smtp-sink ## the whole suite: unit, contract, integration, e2e (starts its own infrastructure)
	$(PY) -m pytest

test-kafka: install kafka browser smtp-sink ## the integration and e2e tests again, on Apache Kafka instead of Tansu (Java 17+, Maven)
	NPSLOOP_TEST_INFRA=apache-kafka $(PY) -m pytest tests/integration tests/e2e

test-unit: install ## unit and contract tests only (no infrastructure)
	$(PY) -m pytest tests/unit tests/contract

test-integration: install smtp-sink
	$(PY) -m pytest tests/integration

test-e2e: install browser
	$(PY) -m pytest tests/e2e

lint: install ## ruff, mypy (strict) and import-linter contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

contracts: install ## regenerate contracts/ from the event models
	$(PY) -m nps_events.contracts contracts

clean: down ## remove var/ and everything installed in the project's folder (.venv, .tools, checkov's, Apache Kafka)
	rm -rf $(VENV) .tools var tools/kafka/target tools/checkov/.venv
