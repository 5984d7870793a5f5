#!/usr/bin/env bash
# DeepMind Control and Meta-World for the paper-suite adapters (robot_envs/suites).
# Both pin an older MuJoCo than franky-sim's mujoco 4.x, so each gets an overlay directory that is
# put first on PYTHONPATH only for suite runs (docs/benchmarks.md); the venv keeps mujoco 4.x.
# Usage: scripts/install_suites.sh <venv>
set -euo pipefail
VENV=${1:-.venv}
PIP="$VENV/bin/python -m pip"
$PIP install -q "dm-control==1.0.50"
$PIP install -q --no-deps --target "$VENV/overlays/dmc" "mujoco==3.17.0" etils
$PIP install -q --no-deps --target "$VENV/overlays/metaworld" "metaworld==3.1.1" "gymnasium==1.4.0" \
    "farama-notifications==0.0.6" "cloudpickle==3.1.2" "imageio==2.38.1" "mujoco==3.3.0" etils
