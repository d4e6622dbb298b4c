#!/bin/bash
# Issue 15's ablations on the 0.7.0 embedded model: the default `azr train` (60 steps, seed 0) with
# one option changed per arm, its step-60 model scored greedy on the held-out split and the
# ordinary-style probe, and `azr compare` against the base and against the default run.
#   bash experiments/ablations/run.sh OUT_DIR [NAME=OVERRIDES ...]
# Without arms, the arms of README.md. The base's and the default run's evaluations are taken from
# ../base-scale and ../run-time (copy yours over OUT_DIR/eval-{base,default}.json to use your own).
# An arm whose eval-NAME.json exists is not run again. On 2 CPU cores: ~15-19 min an arm.
set -euo pipefail
OUT=${1:?give an output directory}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="heldout,$HERE/../ordinary-probe/ordinary.jsonl"
mkdir -p "$OUT"
[ -f "$OUT/eval-base.json" ] || cp "$HERE/../base-scale/cpu/eval-base.json" "$OUT/eval-base.json"
[ -f "$OUT/eval-default.json" ] || cp "$HERE/../run-time/eval-default2.json" "$OUT/eval-default.json"
arms=("${@:2}")
if [ ${#arms[@]} -eq 0 ]; then
    arms=("lr1e-4=optim.scratchpad_weight=0 optim.lr=1e-4"
          "lr1e-4-seed1=optim.scratchpad_weight=0 optim.lr=1e-4 train.seed=1"
          "group=optim.loss_mean=group"
          "reject-copies=selfplay.reject_copies=true"
          "partial=selfplay.partial_credit=true"
          "n_mc8=selfplay.n_mc=8")
fi
for arm in "${arms[@]}"; do
    name=${arm%%=*}
    read -ra overrides <<< "${arm#*=}"
    if [ ! -f "$OUT/eval-$name.json" ]; then
        azr train --run-dir "$OUT/$name" --fresh "${overrides[@]}" > "$OUT/train-$name.txt" 2>&1
        cp "$OUT/$name/metrics.jsonl" "$OUT/metrics-$name.jsonl"
        azr eval --model "$OUT/$name/checkpoints/step-60/model" --bench "$BENCH" --out "$OUT/eval-$name.json"
    fi
    for against in base default; do
        azr compare "$OUT/eval-$against.json" "$OUT/eval-$name.json" --out "$OUT/compare-$against-$name.json" \
            > "$OUT/compare-$against-$name.txt"
    done
done
