#!/usr/bin/env bash
# MENTOR with 10 scripted-expert demonstrations vs MENTOR from scratch, on a sim task, at the budget and
# evaluation of the from-scratch set (benchmarks/sim_cpu_benchmark.sh, whose mentor runs are the baseline).
# The demos (python -m robot_envs.experts, env seed 1000: other scenes than the training seeds') are
# recorded once into <out>/demos (not committed: 13 MB, rebuilt the same from the seed); each run's
# demonstration buffer is seeded from them and --demo-ratio 0.5 of each batch comes from it.
#   bash benchmarks/demo_benchmark.sh <task> <out_dir> <scratch_dir> [steps] [seeds] [eval_every] [eval_episodes]
#   PARALLEL=1 bash benchmarks/demo_benchmark.sh peg_insertion benchmarks/results/peg_demos_cpu \
#       benchmarks/results/peg_cpu 20000 0,1,2 2000 6
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${1:?usage: demo_benchmark.sh <task> <out_dir> <scratch_dir> [steps] [seeds] [eval_every] [eval_episodes]}
OUT=${2:?out_dir}
SCRATCH=${3:?scratch_dir (the from-scratch set)}
STEPS=${4:-20000}
SEEDS=${5:-0,1,2}
EVAL_EVERY=${6:-2000}
EVAL_EPISODES=${7:-6}
mkdir -p "$OUT"
if [ ! -d "$OUT/demos" ]; then
  nice -n 19 .venv/bin/python -m robot_envs.experts --task "$TASK" --episodes 10 --seed 1000 --out "$OUT/demos.tmp"
  mv "$OUT/demos.tmp" "$OUT/demos"
fi
CONFIGS=mentor EXTRA="--demo-dir $OUT/demos --demo-ratio 0.5" \
  bash benchmarks/sim_cpu_benchmark.sh "$TASK" "$OUT" "$STEPS" "$SEEDS" "$EVAL_EVERY" "$EVAL_EPISODES"
nice -n 19 .venv/bin/python benchmarks/compare_sets.py --config mentor --set "scratch=$SCRATCH" --set "demos=$OUT" \
  --eval-every "$EVAL_EVERY" --out "$OUT/comparison"
