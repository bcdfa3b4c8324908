# LandFusion: `make test` and `make demo` set everything up on Debian 12, then run.
SHELL := /bin/bash
PY := .venv/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup lint test demo bench models water-stats package clean

setup:
	@bash scripts/setup.sh

# Ruff over the repository (configuration in pyproject.toml).
lint: setup
	@$(PY) -m ruff check .

test: setup
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	@$(PY) scripts/demo.py

bench: setup
	@$(PY) bench/run.py $(BENCH)

# Retrains the bundled CNNs with LandFusion's training engine (PyTorch CPU in .venv); MODELS=water
# or eurosat. Ships each only when it beats its baseline (see resources/models/*.md).
models: setup
	@nice -n 10 $(PY) scripts/train_models.py $(MODELS)

# Stores the training chips' per-band statistics in the bundled water model's card (it predates
# them), weights unchanged; needs ../shared/data. A second run changes nothing.
water-stats: setup
	@nice -n 10 $(PY) scripts/water_model_statistics.py

package:
	@bash scripts/package.sh

clean:
	rm -rf .qgis build dist demo_output bench/results .pytest_cache
