#!/usr/bin/env bash
# The success classifier from labels recorded through the graph, with no person: mentor-run record on sim
# reach, the scripted expert drives each episode and labels the newest frames every 0.3 s with the sim's own
# success flag (as an operator's y/n keys would); then python -m robot_envs.labels train holds out a quarter
# of the episodes and prints the held-out balanced accuracy.
#   bash benchmarks/classifier_from_graph.sh [out_dir] [episodes] [train_steps] [camera]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/classifier_from_graph}
EPISODES=${2:-16}
STEPS=${3:-1000}
CAMERA=${4:-front}
mkdir -p "$OUT"
printf 'episode_length: 80\n' > "$OUT/reach_80_steps.yaml"  # ~40 steps to the target: about half are successes
if [ ! -d "$OUT/labels" ]; then
  .venv/bin/mentor-run record --task reach --task-config "$OUT/reach_80_steps.yaml" --run-dir "$OUT/run" \
      --episodes "$EPISODES" --expert --expert-label-every 0.3 --label-frames-dir "$OUT/labels.tmp"
  mv "$OUT/labels.tmp" "$OUT/labels"
fi
.venv/bin/python -m robot_envs.labels train --labels "$OUT/labels" --camera "$CAMERA" --out "$OUT/clf_$CAMERA.pt" \
    --train-steps "$STEPS"
