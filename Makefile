# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds its own virtual environment; torch is pinned first so pip takes the CPU wheel on disk
# instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= outputs/demo
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test lint clean browser

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[export,video,train,dev,vl,view]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/iggt reconstruct --example --out $(DEMO_OUT) --device cpu --overwrite
	$(VENV)/bin/iggt query $(DEMO_OUT) "a photo of a cabinet." --overwrite

# The viewer's browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium chromium-driver >/dev/null; }

test: $(VENV)/.installed browser
	$(PY) -m pytest -q -x

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) outputs
