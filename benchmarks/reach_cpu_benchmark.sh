#!/usr/bin/env bash
# Issue 12's in-process learning benchmark: mentor, no_tp, no_moe, drqv2 x 3 seeds on sim reach with the
# main command's preset (cpu), the same budget for every run, on the directly stepped MuJoCo backend.
# Two runs at a time (one per core, nice 19, one torch thread each), taken from a seed-major queue so that
# a stopped set still has every config at its first seeds; rerunning skips finished runs (resumable per run).
# A failed run is reported in its log and the queue goes on. Camera/move timeouts are generous: on the
# stepped backend they only guard against a hung renderer, and a loaded machine renders slowly.
#   bash benchmarks/reach_cpu_benchmark.sh [out_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/reach_cpu}
STEPS=${2:-6000}
export OUT STEPS
COMMON='--task reach --preset cpu --task-overlay none --torch-threads 1 --eval-every 1000 --eval-episodes 5
        --seeds 0,1,2 --env-runtime camera_timeout_s=60 move_timeout_s=300'
export COMMON
mkdir -p "$OUT/logs"
run_one() {  # one (config, seed), its own log; a failure does not stop the queue
  nice -n 19 .venv/bin/python benchmarks/learning.py $COMMON --steps "$STEPS" --out "$OUT" --only "$1" \
      > "$OUT/logs/${1/:/_seed}.log" 2>&1 || echo "run $1 failed (exit $?): see $OUT/logs/${1/:/_seed}.log"
}
export -f run_one
printf '%s\n' mentor:0 no_tp:0 no_moe:0 drqv2:0 mentor:1 no_tp:1 no_moe:1 drqv2:1 mentor:2 no_tp:2 no_moe:2 drqv2:2 \
  | xargs -P 2 -I{} bash -c 'run_one {}'
nice -n 19 .venv/bin/python benchmarks/learning.py $COMMON --steps "$STEPS" --out "$OUT" --summarise-only
