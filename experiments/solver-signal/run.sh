#!/bin/bash
# Issue 15, item 2 (first measurement): the default run with one token mean (the paper) against
# the same run with a mean per (task type, role) group (optim.loss_mean=group), and with induction
# partial credit; each scored on the held-out tasks against the base model, task by task.
#   bash experiments/solver-signal/run.sh OUT_DIR
# On a 2-core CPU: about 12 minutes a run, 2 minutes an evaluation.
set -euo pipefail
OUT=${1:?give an output directory}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
azr eval --bench heldout --out "$OUT/base.json" > "$OUT/base.txt"
for arm in token group partial; do
    case $arm in
        token) extra=() ;;
        group) extra=(optim.loss_mean=group) ;;
        partial) extra=(selfplay.partial_credit=true) ;;
    esac
    azr train --run-dir "$OUT/$arm" --fresh "${extra[@]}" > "$OUT/$arm.train.txt" 2>&1
    azr eval --model "$OUT/$arm/checkpoints/step-60/model" --bench heldout --out "$OUT/$arm.json" > "$OUT/$arm.txt"
    azr compare "$OUT/base.json" "$OUT/$arm.json" --out "$OUT/compare-base-$arm.json" > "$OUT/compare-base-$arm.txt"
    cp "$OUT/$arm/metrics.jsonl" "$HERE/metrics-$arm.jsonl"
done
azr compare "$OUT/token.json" "$OUT/group.json" --out "$OUT/compare-token-group.json" > "$OUT/compare-token-group.txt"
azr compare "$OUT/token.json" "$OUT/partial.json" --out "$OUT/compare-token-partial.json" > "$OUT/compare-token-partial.txt"
