#!/usr/bin/env bash
# The in-process learning benchmark on a sim task: mentor, no_tp, no_moe, drqv2 x seeds with the main
# command's preset (cpu), the same budget for every run, on the directly stepped MuJoCo backend.
# Two runs at a time (one per core, nice 19, one torch thread each), taken from a seed-major queue (per seed:
# mentor, no_moe, no_tp, drqv2) so that a stopped set still has every config at its first seeds.
# Resumable: rerunning skips finished runs and a killed run goes on from its last mid-run checkpoint
# (every 1000 agent steps). Camera/move timeouts are generous: on the stepped backend they only guard
# against a hung renderer, and a loaded machine renders slowly.
#   bash benchmarks/sim_cpu_benchmark.sh <task> [out_dir] [steps] [seeds] [eval_every] [eval_episodes]
#   bash benchmarks/sim_cpu_benchmark.sh reach benchmarks/results/reach_cpu 6000 0,1,2,3,4 1000 5
#   bash benchmarks/sim_cpu_benchmark.sh peg_insertion benchmarks/results/peg_cpu 20000 0,1,2,3,4 2000 6
# Environment: CONFIGS (default mentor,no_moe,no_tp,drqv2), PARALLEL (runs at a time, default 2; two sets
# side by side at 1 each keep the machine at two processes), EXTRA (more benchmarks/learning.py arguments,
# e.g. "--demo-dir DIR": see benchmarks/demo_benchmark.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: sim_cpu_benchmark.sh <task> [out_dir] [steps] [seeds] [eval_every] [eval_episodes]}
OUT=${2:-benchmarks/results/${TASK}_cpu}
STEPS=${3:-6000}
SEEDS=${4:-0,1,2,3,4}
EVAL_EVERY=${5:-1000}
EVAL_EPISODES=${6:-5}
CONFIGS=${CONFIGS:-mentor,no_moe,no_tp,drqv2}
PARALLEL=${PARALLEL:-2}
EXTRA=${EXTRA:-}
export OUT STEPS
COMMON="--task $TASK --preset cpu --task-overlay none --torch-threads 1 --eval-every $EVAL_EVERY --eval-episodes $EVAL_EPISODES
        --configs $CONFIGS --seeds $SEEDS --checkpoint-every 1000 --env-runtime camera_timeout_s=60 move_timeout_s=300 $EXTRA"
export COMMON
mkdir -p "$OUT/logs"
run_one() {  # one (config, seed), its own log (appended: a resumed part follows the earlier one)
  # A run whose env fails for good (e.g. the arm stuck in a reset move) is started again up to twice: it
  # resumes from its last mid-run checkpoint in a fresh env. A run that still fails does not stop the queue.
  for attempt in 1 2 3; do
    nice -n 19 .venv/bin/python benchmarks/learning.py $COMMON --steps "$STEPS" --out "$OUT" --only "$1" \
        >> "$OUT/logs/${1/:/_seed}.log" 2>&1 && return 0
    echo "run $1 failed (attempt $attempt, exit $?): see $OUT/logs/${1/:/_seed}.log"
  done
}
export -f run_one
for seed in ${SEEDS//,/ }; do printf "%s:$seed\n" ${CONFIGS//,/ }; done | xargs -P "$PARALLEL" -I{} bash -c 'run_one {}'
nice -n 19 .venv/bin/python benchmarks/learning.py $COMMON --steps "$STEPS" --out "$OUT" --summarise-only
