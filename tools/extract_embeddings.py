# Copyright (c) samref contributors. All rights reserved.
"""Pre-extract SAM image embeddings of a config's training images.

    python tools/extract_embeddings.py CONFIG --out DIR [--checkpoint CKPT]
    torchrun --nproc_per_node 4 tools/extract_embeddings.py CONFIG \\
        --out DIR --launcher pytorch

Every image of ``train_dataloader.dataset`` is resized as the training
pipeline resizes it; its views (the image and, when the pipeline flips,
its flipped copy) are encoded once and saved as fp16 tensors into an
embedding store (``DIR/<encoder digest>/<model input digest>-<dtype>
.safetensors``, the evaluation cache's layout), plus ``DIR/index.json``
with the encoder's digest, the input size and each view's key. Entries
already present are skipped, so an interrupted run resumes where it
stopped, while another encoder writes into its own folder
(:func:`samref.apis.extract_embeddings`). Train with the embeddings
by appending ``dict(type='LoadImageEmbedding', embedding_dir=DIR)`` to the
training pipeline (``configs/demo/samref_tiny_256_stage2_embeddings.py``
shows how); ``SafeLoadRunner`` refuses a folder whose index does not match
the model.
"""
import argparse
from typing import List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import get_dist_info, init_dist, is_distributed
from mmengine.registry import init_default_scope

from samref.apis import extract_embeddings, init_model
from samref.utils import prepare_cpu_distributed, release_process_group


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pre-extract SAM image embeddings')
    parser.add_argument('config', help='training config')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--checkpoint',
        help='weights of the image encoder (default: the config\'s '
        'load_from)')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='fail when the checkpoint differs from the model in any key '
        'or shape')
    parser.add_argument(
        '--drop-foreign-objects',
        action='store_true',
        help='load a checkpoint that holds numpy values or other objects '
        'beyond tensors and plain data (one of another mmengine project), '
        'each replaced by an inert placeholder (refused without it)')
    parser.add_argument(
        '--fp32', action='store_true', help='store float32 (default fp16)')
    parser.add_argument('--device', help='default: cuda if available')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='overrides')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch'], default='none')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Extract the embeddings.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        str: The index file.
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    # Without a GPU: a gloo process group from torchrun's environment (as
    # tools/train.py does); mmengine's init_dist would select a CUDA device.
    prepare_cpu_distributed(cfg)
    if args.launcher == 'pytorch' and not is_distributed():
        init_dist('pytorch', backend='nccl')
    rank, world_size = get_dist_info()
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and world_size > 1:
        device = f'cuda:{rank % torch.cuda.device_count()}'
    model = init_model(
        cfg,
        args.checkpoint or cfg.get('load_from'),
        device,
        strict=args.strict,
        drop_foreign_objects=args.drop_foreign_objects)
    try:
        index_path = extract_embeddings(
            cfg, model, args.out,
            torch.float32 if args.fp32 else torch.float16)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if rank == 0:
        print(f'\nembeddings of the training images, index {index_path}')
    release_process_group()
    return index_path


if __name__ == '__main__':
    main()
