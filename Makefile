# Everything a fresh machine needs: Python 3.10 (lava-nc supports nothing newer).
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10.*/bin/python3.10; do $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STEPS ?= 48
SAMPLES ?= 1

.PHONY: setup demo test bench graphs clean

$(BIN)/neurocompile: pyproject.toml
	@test -n "$(PYTHON310)" || { echo "error: Python 3.10 not found (install it or set PYTHON310=...)"; exit 2; }
	$(PYTHON310) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/neurocompile

# The main job: build the shipped digits MST for Loihi 2 (simulated), run it on both backends and
# compare (Lava runs each process as an OS process: about a minute for one sample of 48 steps).
demo: setup
	$(BIN)/neurocompile build graphs/digits_mst.onnx --target loihi2-sim -o out/digits_mst.ncx
	$(BIN)/neurocompile inspect out/digits_mst.ncx
	$(BIN)/neurocompile compare out/digits_mst.ncx --input graphs/digits_mst_test_x.npy --samples $(SAMPLES) --steps $(STEPS)

# Two test processes: Lava's OS processes and the simulator's loops then share both cores.
test: setup
	$(BIN)/python -m pytest -q -n 2

bench: setup
	$(BIN)/python benchmarks/sim_vs_lava.py

# Retrains the shipped example models (deterministic; needs torch from the dev extra).
graphs: setup
	$(BIN)/python examples/train_digits.py --out graphs
	$(BIN)/python examples/train_mst_digits.py --out graphs

clean:
	rm -rf out .pytest_cache
