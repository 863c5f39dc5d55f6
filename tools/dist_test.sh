#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Splits the images across GPUS processes (CPU processes with gloo when no
# GPU is present) and gathers the results on rank 0.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

# Say up front what will run: no torch in $PYTHON, or no GPU (then GPUS
# CPU processes with gloo), or fewer GPUs than asked for.
CUDA_DEVICES=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null) || {
    echo "$0: $PYTHON cannot import torch; activate the environment" \
        "(source .venv/bin/activate) or set PYTHON=/path/to/python" >&2
    exit 1
}
if [ "$CUDA_DEVICES" -eq 0 ]; then
    echo "$0: no CUDA device visible: starting $GPUS CPU processes (gloo)" >&2
elif [ "$NNODES" -eq 1 ] && [ "$GPUS" -gt "$CUDA_DEVICES" ]; then
    echo "$0: $GPUS processes asked for, $CUDA_DEVICES CUDA devices visible" >&2
    exit 1
fi

"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch \
    "${@:4}"
