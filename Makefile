# One entry point for set-up, the main job, tests and benchmarks. Every target creates the
# virtualenv and installs what it needs from scratch, so each works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch that lies on these machines; an unpinned torch pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install train test test-fast bench clean

$(STAMP): pyproject.toml ros2_ws/src/mentor/setup.py Makefile
	@bash scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e ".[sim,robot,ros-wheels,dev,data]"
	$(PIP) install -q -e ros2_ws/src/mentor
	bash scripts/install_suites.sh $(VENV)
	@touch $(STAMP)

install: $(STAMP)

# Main job: MENTOR training through the ROS 2 node graph on the simulated FR3 (embedded runner), with the
# agent preset sized for a 2-core CPU (mentor_policy/configs/cpu.yaml). Deploy the result with
# mentor-run deploy ... --checkpoint runs/reach_sim/learner/checkpoints/best.pt (README).
train: $(STAMP)
	$(VENV)/bin/mentor-run train --use-sim --task reach --run-dir runs/reach_sim --steps 20000 --agent-config cpu

# The README's test command (CI runs exactly this): the linter (ruff, configured in pyproject.toml), then every test.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

# The fast tier: pure tests (no simulator, no DDS), a minute or so.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests/unit

# Speed and memory figures (printed, never asserted). Learning curves: benchmarks/learning.py, see docs/benchmarks.md.
BENCHMARKS := update_time act_latency replay_memory render_time command_latency env_steps fast_env_steps control_loop weight_sync transition_ingest
bench: $(STAMP)
	@for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; MUJOCO_GL=egl $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) build ros2_ws/build ros2_ws/install ros2_ws/log
