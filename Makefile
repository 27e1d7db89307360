# Two commands on a fresh machine: `make run` (demo city on SQLite) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ENV := HOTLINE_DEMO=1
DEMO_WECHAT_API_PORT ?= 8765

.PHONY: install run test lint check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "python3-venv is missing: apt-get install python3-venv"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	@mkdir -p var && printf '# written by make run: the demo city on this checkout (delete for a real deployment)\nHOTLINE_DEMO=1\n' > var/demo.env
	@printf 'HOTLINE_PHONE_ENABLED=1\n' >> var/demo.env
	$(DEMO_ENV) $(BIN)/hotline migrate
	$(DEMO_ENV) $(BIN)/hotline nlp starter
	$(DEMO_ENV) $(BIN)/hotline seed-demo
	@# the demo's outside services are local fakes (tests/fakes/), stopped with the server: Twilio's REST API on 8010,
	@# the WeChat API on $(DEMO_WECHAT_API_PORT)
	$(BIN)/python -m tests.fakes.twilio_api --port 8010 & twilio=$$!; \
	$(BIN)/python -m tests.fakes.wechat_api --port $(DEMO_WECHAT_API_PORT) & wechat=$$!; \
	trap "kill $$twilio $$wechat" EXIT INT TERM; \
	$(DEMO_ENV) HOTLINE_LOG_FORMAT=text HOTLINE_WECHAT_API_BASE=http://127.0.0.1:$(DEMO_WECHAT_API_PORT) $(BIN)/hotline serve

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check hotline routing nlp agent_ui wechat_bot channels tests bench
	$(BIN)/mypy

check: lint test

clean:
	rm -rf var/hotline.db* var/model var/demo.env .pytest_cache test-artifacts
