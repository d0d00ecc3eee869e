# The two front-door commands: `make demo` and `make test`. Both install what they
# need first (uv, then the locked dependencies), so they work on a fresh machine.
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
ARGS ?=

.PHONY: demo up test lint sync chromium

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

# The browser tests (tests/browser) drive Debian's chromium through Playwright (never a browser
# Playwright downloads): installed here when /usr/bin/chromium is missing, a no-op once it is there.
# GRIDHUB_CHROMIUM names another Chromium to use instead.
# A CJK font comes with it, so the screenshots show the screen's Chinese labels, not empty boxes.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
chromium:
	@if { [ -z "$$GRIDHUB_CHROMIUM" ] && [ ! -x /usr/bin/chromium ]; } || [ ! -f $(CJK_FONT) ]; then \
		echo "installing Debian's chromium and a CJK font for the browser tests"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-wqy-zenhei; \
	fi

test: lint chromium
	$(UV) run --frozen pytest $(ARGS)
