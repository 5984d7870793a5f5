#!/usr/bin/env bash
# The GPU figures of the fast-sim benchmark issue, as one short prepared script for a lent GPU machine
# (about 8 minutes; run from the repository root: `bash benchmarks/gpu_check.sh`). Writes $OUT (default
# benchmarks/results/gpu/) and prints:
#   1. the paper-config learner update on CUDA (batch 256, 84x84x9, 16 experts top-4; target <= 15 ms on a
#      current data-centre GPU), with the per-part breakdown, and with the bf16 encoder;
#   2. the learner's sustained updates/s inside the ROS 2 graph: `mentor-run train` on the simulated FR3
#      (reach) with the paper preset for 4 minutes, the learner uncapped (max_updates_per_s 0) and allowed
#      up to 8 updates per env step, counted from its progress lines after the seed frames.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
SECONDS_IN_GRAPH=${SECONDS_IN_GRAPH:-240}
mkdir -p "$OUT"
[ -x .venv/bin/python ] || make install
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
.venv/bin/python -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__, 'cuda', ok); sys.exit(0 if ok else 3)"
.venv/bin/python benchmarks/update_time.py --config paper --device cuda --updates 100 --warmup 20 --breakdown 20 \
    --json "$OUT/update_paper_cuda.json" | tee "$OUT/update_paper_cuda.txt"
.venv/bin/python benchmarks/update_time.py --config paper --device cuda --updates 100 --warmup 20 \
    --set encoder_precision=bf16 --json "$OUT/update_paper_cuda_bf16.json" | tee "$OUT/update_paper_cuda_bf16.txt"
cat > "$OUT/learner_uncapped.yaml" <<'YAML'
learner:
  ros__parameters:
    max_updates_per_s: 0.0
    utd: 8.0
YAML
rm -rf "$OUT/graph_run" "$OUT/graph_samples.txt"
.venv/bin/mentor-run train --use-sim --task reach --run-dir "$OUT/graph_run" --steps 1000000 --agent-config paper \
    --agent-overrides "{num_seed_frames: 400}" --config-file "$OUT/learner_uncapped.yaml" > "$OUT/graph_run.log" 2>&1 &
RUNNER=$!
for _ in $(seq $((SECONDS_IN_GRAPH / 15))); do  # sample the learner's progress line every 15 s
  sleep 15
  line=$(grep "learner: env_steps" "$OUT/graph_run.log" | tail -n 1 || true)
  [ -n "$line" ] && echo "$(date +%s.%N) $line" >> "$OUT/graph_samples.txt"
done
kill -INT "$RUNNER" 2> /dev/null || true
wait "$RUNNER" || true
.venv/bin/python - "$OUT/graph_samples.txt" <<'PY' | tee "$OUT/graph_updates.txt"
import re, sys
rows = [(float(t), int(e), int(u)) for t, e, u in
        re.findall(r"^(\d+\.\d+) .*learner: env_steps (\d+) updates (\d+)", open(sys.argv[1]).read(), re.M)]
rows = [r for r in rows if r[2] > 0]
if len(rows) < 2:
    sys.exit(f"fewer than two learner progress samples with updates in {sys.argv[1]}: see graph_run.log")
(t0, e0, u0), (t1, e1, u1) = rows[0], rows[-1]
print(f"learner inside the graph: {(u1 - u0) / (t1 - t0):.1f} updates/s sustained over {t1 - t0:.0f} s "
      f"({u1 - u0} updates, {e1 - e0} env steps: {(u1 - u0) / max(e1 - e0, 1):.2f} updates per env step)")
PY
