# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds its own virtual environment; torch and torchvision are pinned first, as a pair that
# imports together (OpenCLIP needs torchvision), so pip takes the wheels on disk instead of resolving
# other builds.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= outputs/demo
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test lint clean browser

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[export,video,train,dev,vl,openclip,view]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/iggt reconstruct --example --out $(DEMO_OUT) --device cpu --overwrite
	$(VENV)/bin/iggt query $(DEMO_OUT) "a photo of a cabinet." --overwrite

# The viewer's browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:
	@test -x $(CHROMIUM) || { as_root=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$as_root apt-get install -y -qq \
		chromium chromium-driver >/dev/null; }

test: $(VENV)/.installed browser
	$(PY) -m pytest -q -x

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) outputs
