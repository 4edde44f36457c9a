# The only entry points a newcomer needs: `make run` and `make test` each do the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNELS := $(VENV)/.kernels

.PHONY: run test lint bench clean browser

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch that lies on this machine's disk; elsewhere pip picks the right one
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# compile the fused LSTM/GRU kernels now (about a minute, cached) rather than mid-training
$(KERNELS): $(STAMP) src/deepfin/models/kernels/csrc/recurrent.cpp
	$(BIN)/python -c "from deepfin.models.kernels.fused_rnn import extension; extension()"
	touch $(KERNELS)

run: $(KERNELS)
	$(BIN)/deepfin forecast --config configs/hybrid_sp500.toml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint browser $(KERNELS)
	$(BIN)/pytest -q

# Debian's chromium renders the HTML reports in the browser tests; they skip where it cannot install
browser:
	@command -v chromium >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null 2>&1 || echo "chromium could not be installed: the browser test will skip"

# throughput (deepfin beside the minimal loop of ../shared/bench, in the same run), then scale;
# about 15-20 minutes on two quiet cores; tables on stdout, JSON in bench/results/
bench: $(KERNELS)
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/panel_batches.py
	$(BIN)/python bench/hybrid_ablation.py
	$(BIN)/python bench/chart_render.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
