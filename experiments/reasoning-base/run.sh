#!/bin/bash
# Issue 15, item 1: the base model that thinks in a scratchpad, and what the default run does to
# it. Scores the base (greedy, and 4 samples at temperature 1) and the default run's last
# checkpoint (greedy) on the held-out tasks and the hand-written ordinary-style probe, task by task.
#   bash experiments/reasoning-base/run.sh OUT_DIR
# On a 2-core CPU: about 9 minutes the run, 2-6 minutes an evaluation.
set -euo pipefail
OUT=${1:?give an output directory}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="heldout,$HERE/../ordinary-probe/ordinary.jsonl"
mkdir -p "$OUT"
azr eval --bench "$BENCH" --out "$OUT/eval-base.json"
azr eval --bench "$BENCH" --samples 4 --temperature 1.0 --k 1 --out "$OUT/sampled-base.json"
for arm in default "${@:2}"; do
    case $arm in
        default) extra=() ;;
        *) extra=("$arm") ;;
    esac
    name=${arm//[^a-z0-9.-]/_}
    azr train --run-dir "$OUT/$name" --fresh "${extra[@]}" > "$OUT/train-$name.txt" 2>&1
    azr eval --model "$OUT/$name/checkpoints/step-60/model" --bench "$BENCH" --out "$OUT/eval-$name.json"
    azr compare "$OUT/eval-base.json" "$OUT/eval-$name.json" --out "$OUT/compare-base-$name.json"
done
