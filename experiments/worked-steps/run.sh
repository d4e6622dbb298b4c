#!/bin/bash
# Issue 15: the embedded model rebuilt to write worked steps in its scratchpad, scored against the
# model it replaces, and the default `azr train` on it, with one more arm per override given
# (e.g. optim.scratchpad_weight=0). Greedy pass@1 on the held-out tasks and the hand-written
# ordinary-style probe, task by task; then 4 samples at temperature 1 of the base and each arm.
#   bash experiments/worked-steps/run.sh OUT_DIR [ARM...]
# An arm is one or more overrides in one argument, e.g. "optim.scratchpad_weight=0 optim.lr=1e-4".
#   OLD_MODEL=DIR   also score the model it replaces (azr 0.5's: azr/base/model/* at commit 09fcc75)
# Each result is skipped when its file exists, so an interrupted run picks up where it stopped.
# On a 2-core CPU: about 10 minutes a run, 3-8 minutes an evaluation.
set -euo pipefail
OUT=${1:?give an output directory}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="heldout,$HERE/../ordinary-probe/ordinary.jsonl"
mkdir -p "$OUT"
[ -f "$OUT/eval-base.json" ] || azr eval --bench "$BENCH" --out "$OUT/eval-base.json"
if [ -n "${OLD_MODEL:-}" ] && [ ! -f "$OUT/eval-old-base.json" ]; then
    azr eval --model "$OLD_MODEL" --bench "$BENCH" --out "$OUT/eval-old-base.json"
    azr compare "$OUT/eval-old-base.json" "$OUT/eval-base.json" --out "$OUT/compare-old-base.json" \
        > "$OUT/compare-old-base.txt"
fi
arms=(default "${@:2}")
for arm in "${arms[@]}"; do
    case $arm in
        default) extra=() ;;
        *) read -ra extra <<< "$arm" ;;
    esac
    name=${arm//[^a-z0-9.-]/_}
    if [ ! -f "$OUT/eval-$name.json" ]; then
        azr train --run-dir "$OUT/$name" --fresh "${extra[@]}" > "$OUT/train-$name.txt" 2>&1
        cp "$OUT/$name/metrics.jsonl" "$OUT/metrics-$name.jsonl"
        azr eval --model "$OUT/$name/checkpoints/step-60/model" --bench "$BENCH" --out "$OUT/eval-$name.json"
    fi
    azr compare "$OUT/eval-base.json" "$OUT/eval-$name.json" --out "$OUT/compare-base-$name.json" \
        > "$OUT/compare-base-$name.txt"
    if [ "$name" != default ]; then
        azr compare "$OUT/eval-default.json" "$OUT/eval-$name.json" --out "$OUT/compare-default-$name.json" \
            > "$OUT/compare-default-$name.txt"
    fi
done
SAMPLED=(--samples 4 --temperature 1.0 --k 1)
[ -f "$OUT/sampled-base.json" ] || azr eval --bench "$BENCH" "${SAMPLED[@]}" --out "$OUT/sampled-base.json"
for arm in "${arms[@]}"; do
    name=${arm//[^a-z0-9.-]/_}
    [ -f "$OUT/sampled-$name.json" ] || azr eval --model "$OUT/$name/checkpoints/step-60/model" --bench "$BENCH" \
        "${SAMPLED[@]}" --out "$OUT/sampled-$name.json"
    azr compare "$OUT/sampled-base.json" "$OUT/sampled-$name.json" --out "$OUT/compare-sampled-base-$name.json" \
        > "$OUT/compare-sampled-base-$name.txt"
done
