# The two commands that set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := mrml,web,czi,test,bench
DEMO_OUT ?= demo-output

.PHONY: demo test system-deps venv bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

demo: system-deps $(STAMP)
	$(BIN)/imgsuite demo --output $(DEMO_OUT)
	@echo "open $(DEMO_OUT)/report.html; load $(DEMO_OUT)/SlicerImgSuite-demo.mrb in Slicer"

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: system-deps $(STAMP)
	@for b in bench/[a-z]*.py; do [ "$$b" = bench/runner.py ] || $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check SlicerImgSuite Modules Testing bench

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
