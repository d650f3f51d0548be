# selftrain: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Telemetry off everywhere: this project runs offline. The one list is TELEMETRY_OFF in
# selftrain/offline.py; it is exported here for the tools make starts (prefect, bentoml).
TELEMETRY_OFF := $(shell sed -n 's/^    "\([A-Z_]*\)": "\(.*\)",$$/\1=\2/p' selftrain/offline.py)
$(foreach setting,$(TELEMETRY_OFF),$(eval export $(setting)))
export PREFECT_SERVER_LOGGING_LEVEL := CRITICAL
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.DEFAULT_GOAL := help
.PHONY: help install constraints run test test-fast lint bench serve server deploy browser

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv/ and install the project with its dev tools (fast when nothing changed)

# constraints.txt: the tested versions, so a fresh machine installs what CI tested.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip 'setuptools>=78.1.1'
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

constraints: ## after a tested upgrade: write the venv's versions to constraints.txt
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable --exclude selftrain \
		| grep -v '^#'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

run: install ## run the main job: the training pipeline on the default table (digits)
	test -f data/raw/digits.csv || $(BIN)/selftrain prepare data/raw/digits.csv
	$(BIN)/selftrain run --config params.yaml

lint: install ## ruff
	$(BIN)/ruff check .

test: install lint browser ## lint, then run the whole test suite (prints the 15 slowest)
	$(BIN)/pytest --durations=15

test-fast: install ## unit + data + model tests, the edit loop (under 2 minutes)
	$(BIN)/pytest tests/unit tests/data tests/model -m "not slow" -q

bench: install ## accuracy and speed benchmarks (tables on stdout, JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.accuracy

serve: install ## serve the promoted model on 127.0.0.1:3000 (make serve PORT=3001; SELFTRAIN_MODEL_TAG=name:version)
	$(BIN)/selftrain serve $(if $(PORT),--port $(PORT))

PREFECT_PORT ?= 4200
CHROMIUM := /usr/bin/chromium

server: install ## Prefect server + UI on http://127.0.0.1:4200, with credentials, CORS and CSRF (make server PREFECT_PORT=4201)
	$(BIN)/selftrain server --port $(PREFECT_PORT)

deploy: install ## serve train-pipeline/nightly on that server, with its credentials (make deploy CRON='0 3 * * *')
	test -f data/raw/digits.csv || $(BIN)/selftrain prepare data/raw/digits.csv
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:$(PREFECT_PORT)/api} \
		$(BIN)/selftrain deploy $(if $(CRON),--cron '$(CRON)')

browser: ## Debian's chromium for the UI test (apt-get, only when /usr/bin/chromium is missing)
	test -x $(CHROMIUM) || (apt-get update && apt-get install -y chromium)
