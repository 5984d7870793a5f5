#!/usr/bin/env bash
# Issue 12's in-process learning benchmark: mentor, no_tp, no_moe, drqv2 x 3 seeds on sim reach with the
# main command's preset (cpu), the same budget for every run, on the directly stepped MuJoCo backend.
# Two worker processes (one per core, nice 19, one torch thread each), seed-major so that a stopped set
# still has every config at its first seeds; rerunning skips finished runs (resumable per run).
#   bash benchmarks/reach_cpu_benchmark.sh [out_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/reach_cpu}
STEPS=${2:-6000}
COMMON=(--task reach --preset cpu --task-overlay none --torch-threads 1 --steps "$STEPS" --eval-every 1000
        --eval-episodes 5 --seeds 0,1,2 --out "$OUT")
worker() {  # runs its (config, seed) list one after the other
  for run in "$@"; do
    nice -n 19 .venv/bin/python benchmarks/learning.py "${COMMON[@]}" --only "$run"
  done
}
mkdir -p "$OUT"
worker mentor:0 no_moe:0 mentor:1 no_moe:1 mentor:2 no_moe:2 > "$OUT/worker_a.log" 2>&1 &
worker no_tp:0 drqv2:0 no_tp:1 drqv2:1 no_tp:2 drqv2:2 > "$OUT/worker_b.log" 2>&1 &
wait
nice -n 19 .venv/bin/python benchmarks/learning.py "${COMMON[@]}" --summarise-only
