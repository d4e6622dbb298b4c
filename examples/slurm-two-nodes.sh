#!/bin/bash
# Two nodes of 8 GPUs under SLURM: one torchrun per node, meeting at the first node.
#   sbatch examples/slurm-two-nodes.sh
# The run directory must be on storage both nodes see. Rerunning the same script resumes the run
# (from its newest checkpoint, at any number of nodes: the checkpoints reshard).
#SBATCH --job-name=azr-paper-7b
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.log

set -euo pipefail
RUN_DIR=${RUN_DIR:-/shared/runs/paper-7b}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)

# Each node's torchrun starts 8 ranks; the c10d rendezvous on the first node numbers them 0-15.
# Rank 0 (on the first node) holds the run directory's lock, the task store and the log.
srun torchrun \
    --nnodes "$SLURM_NNODES" --nproc_per_node 8 \
    --rdzv-backend c10d --rdzv-endpoint "$HEAD:29500" --rdzv-id "$SLURM_JOB_ID" \
    -m azr.cli train --config paper-7b --run-dir "$RUN_DIR" train.world_size=16 "$@"
