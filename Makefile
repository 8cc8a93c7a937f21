# The two commands that set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := mrml,web,czi,test,bench,cohort,excel,learn
DEMO_OUT ?= demo-output

# Desktop Slicer bundles Python 3.12 with the versions in constraints-slicer.txt: the logic layer is tested
# there too (without slicer-core, which the desktop app provides itself).
SLICER_PYTHON ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) /usr/bin/python3.12,$(shell $(p) -c 'import sys; print("$(p)") if sys.version_info[:2] == (3, 12) else None' 2>/dev/null)))
VENV_SLICER := .venv-slicer-python
SLICER_TESTS := SlicerImgSuite Testing/test_io_dicom.py Testing/test_io_atomic.py Testing/test_cli.py Testing/test_hsi_container.py \
	Testing/test_hsi_envi.py Testing/test_hsi_processing.py Testing/test_imageops_plastimatch.py \
	Testing/test_registration_cmdfile.py Testing/test_registration_engine.py Testing/test_rtstruct_rasterize.py \
	Testing/test_segmentation_mabs.py Testing/test_segmentation_nuclei.py Testing/test_tomo_geometry_io.py Testing/test_warm.py \
	--ignore SlicerImgSuite/cohort \
	--deselect SlicerImgSuite/segmentation/unet.py::SlicerImgSuite.segmentation.unet.train_from_files \
	--deselect SlicerImgSuite/web/render.py::SlicerImgSuite.web.render.render_views \
	--deselect Testing/test_segmentation_nuclei.py::test_nuclei_in_mrml  # slicer-core; the cohort layer needs the cohort extra (Dask, pyarrow), training torch (learn), rendering trame-slicer (web): all run in `make test`

.PHONY: demo test test-slicer-python system-deps venv bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/python -m SlicerImgSuite.tomo.aot || echo "note: no ahead-of-time projector (a C compiler is needed); DRRs use numba"
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

demo: system-deps $(STAMP)
	$(BIN)/imgsuite demo --output $(DEMO_OUT)
	@echo "open $(DEMO_OUT)/report.html; load $(DEMO_OUT)/SlicerImgSuite-demo.mrb in Slicer"

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-slicer-python: system-deps
	@if [ -z "$(SLICER_PYTHON)" ]; then echo "no Python 3.12 here: the Slicer-Python compatibility run is not possible"; exit 0; fi; \
	set -e; [ -x $(VENV_SLICER)/bin/python ] || $(SLICER_PYTHON) -m venv $(VENV_SLICER); \
	$(VENV_SLICER)/bin/python -m pip install -q --upgrade pip; \
	$(VENV_SLICER)/bin/python -m pip install -q -c constraints-slicer.txt -e ".[test,czi]"; \
	$(VENV_SLICER)/bin/python -m pytest -q -p no:cacheprovider $(SLICER_TESTS)

bench: system-deps $(STAMP)
	@for b in bench/[a-z]*.py; do [ "$$b" = bench/runner.py ] || $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check SlicerImgSuite Modules Testing bench

clean:
	rm -rf $(VENV) $(VENV_SLICER) $(DEMO_OUT) .pytest_cache .ruff_cache
