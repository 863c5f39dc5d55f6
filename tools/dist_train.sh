#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# One process per GPU with torchrun (CPU processes with gloo when no GPU is
# present). Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT.
set -euo pipefail
CONFIG=$1
GPUS=$2
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
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch \
    "${@:3}"
