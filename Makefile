# The two commands: `make train` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch on these machines; pyproject keeps a range so GPU users keep their build.
TORCH_PIN ?= torch==2.13.0
MINUTES ?= 20
SEED ?= 0
export PYGAME_HIDE_SUPPORT_PROMPT := 1

.PHONY: train play test venv clean diagrams

# One pip call, without compiling every installed module to bytecode (torch has thousands): 18 s
# here instead of 53 s. Python compiles the ones a command imports at its first import and caches
# them, unless PYTHONDONTWRITEBYTECODE is set (as on our CI machines): then every process compiles
# torch's imports again (5.3 s instead of 2.1 s to import it), and the test suite, which starts many
# processes, took 562-580 s here instead of 357-382. The venv is ours: the recipes let Python cache.
unexport PYTHONDONTWRITEBYTECODE
PIP := $(BIN)/python -m pip install -q --no-compile --disable-pip-version-check

# What make train needs: the package and its core dependencies. make train does not wait for
# `selfplay warmup`: its run compiles the numba kernels it uses in its first seconds, inside its
# 20 minutes (about 20 s of them), where the warm-up would add about 25 s before them.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH_PIN)" -e .
	touch $@

# numba's disk cache of every kernel, so that no later command compiles (~25 s here, once).
$(BIN)/.warmed: $(BIN)/.installed
	$(BIN)/selfplay warmup
	touch $@

# What the tests need besides: the dev extras (pytest, Ray, hypothesis).
$(BIN)/.installed-dev: $(BIN)/.warmed
	$(PIP) -e ".[dev]"
	touch $@

venv: $(BIN)/.warmed

train: $(BIN)/.installed
	$(BIN)/selfplay train connect4 --preset small --minutes $(MINUTES) --run.seed $(SEED)

# Play Connect Four in a pygame window (click a column; Tab: analysis; Ctrl+Z undo; docs/play.md):
# against your newest run under runs/ when there is one, else the brain shipped in the package.
play: $(BIN)/.warmed
	@run=$$(ls -td runs/connect4-*/ 2>/dev/null | head -1); \
	if [ -n "$$run" ]; then echo "playing $$run (make train's newest run)"; $(BIN)/selfplay play --agent "$$run"; \
	else echo "playing the shipped brain (selfplay pretrained lists it)"; $(BIN)/selfplay play connect4; fi

test: $(BIN)/.installed-dev
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -p no:cacheprovider  # worksteal: an idle worker takes queued tests

# The architecture pictures in docs/architecture.md, from their graphviz sources (apt install graphviz).
diagrams:
	for f in docs/img/architecture/*.dot; do dot -Tpng -Gdpi=110 "$$f" -o "$${f%.dot}.png"; done

clean:
	rm -rf $(VENV) .pytest_cache
