# The two front-door commands: `make demo` and `make test`. Both install what they
# need first (uv, then the locked dependencies), so they work on a fresh machine.
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
ARGS ?=

.PHONY: demo up test lint sync

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set (as on our machines) every
# process would otherwise recompile pandas, faust and GX from source at each start (~6 s).
sync: | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen python -m compileall -q foundation schemas connectors streams warehouse gridhub simulation bench

demo: sync
	$(UV) run --frozen gridhub demo $(ARGS)

up: sync
	$(UV) run --frozen gridhub up $(ARGS)

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

test: lint
	$(UV) run --frozen pytest $(ARGS)
