# Copyright (c) samref contributors. All rights reserved.
"""Pre-extract SAM image embeddings of a config's training images.

    python tools/extract_embeddings.py CONFIG --out DIR [--checkpoint CKPT]
    torchrun --nproc_per_node 4 tools/extract_embeddings.py CONFIG \\
        --out DIR --launcher pytorch

Every image of ``train_dataloader.dataset`` is resized as the training
pipeline resizes it; its views (the image and, when the pipeline flips,
its flipped copy) are encoded once and saved as fp16 tensors, one
safetensors file per view, plus ``index.json`` with the encoder's digest
and the input size.
File names include a digest of the encoder, input size, resize and dtype:
files already present for the same settings are skipped, so an interrupted
run resumes where it stopped, while a run with another encoder or size
writes new files instead of reusing stale ones. Train with the embeddings
by appending ``dict(type='LoadImageEmbedding', embedding_dir=DIR)`` to the
training pipeline (``configs/demo/samref_tiny_256_stage2_embeddings.py``
shows how); ``SafeLoadRunner`` refuses a folder whose index does not match
the model.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import tempfile
from typing import List, Optional

import torch
from mmcv.transforms import Compose
from mmengine.config import Config, DictAction
from mmengine.dist import (all_gather_object, barrier, get_dist_info,
                           init_dist, is_distributed, is_main_process)
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

from samref.apis import init_model
from samref.datasets.transforms.image_embedding import (INDEX_FILE,
                                                        embedding_view)
from samref.engine import encoder_fingerprint
from samref.utils import (prepare_cpu_distributed, release_process_group,
                          save_tensor_file)


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


def find_transform(pipeline: list, name: str) -> Optional[dict]:
    """The first transform config of a type, also inside wrappers."""
    for transform in pipeline:
        if transform.get('type') == name:
            return transform
        found = find_transform(transform.get('transforms', []), name)
        if found is not None:
            return found
    return None


def settings_digest(meta: dict) -> str:
    """A digest of what an embedding depends on besides its image: the
    encoder's digest, input size, resize and dtype."""
    keys = ('encoder', 'input_size', 'resize', 'dtype')
    text = json.dumps({k: meta[k] for k in keys}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def file_name(img_path: str, view: str, settings: str) -> str:
    """A stable file name for an image view, unique per settings digest."""
    digest = hashlib.sha1(f'{settings}|{img_path}|{view}'.encode())
    return digest.hexdigest()[:24] + f'_{view}.safetensors'


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
    checkpoint = args.checkpoint or cfg.get('load_from')
    model = init_model(
        cfg,
        checkpoint,
        device,
        strict=args.strict,
        drop_foreign_objects=args.drop_foreign_objects)

    pipeline_cfg = cfg.train_dataloader.dataset.get('pipeline') or \
        cfg.get('train_pipeline', [])
    resize = find_transform(pipeline_cfg, 'Resize')
    if resize is None:
        raise SystemExit('the training pipeline has no Resize; nothing '
                         'tells how large the embedded images are')
    flip = find_transform(pipeline_cfg, 'RandomFlip')
    directions = [None]
    if flip is not None:
        direction = flip.get('direction', 'horizontal')
        directions += direction if isinstance(direction, list) else \
            [direction]
    load = Compose([dict(type='LoadImageWithPixelLimit'), dict(resize)])
    dataset_cfg = dict(cfg.train_dataloader.dataset)
    dataset_cfg['pipeline'] = []
    dataset = DATASETS.build(dataset_cfg)
    sub_datasets = getattr(dataset, 'datasets', [dataset])
    img_paths = sorted({
        sub.get_data_info(i)['img_path']
        for sub in sub_datasets for i in range(len(sub))
    })

    os.makedirs(args.out, exist_ok=True)
    dtype = torch.float32 if args.fp32 else torch.float16
    meta = dict(
        encoder=encoder_fingerprint(model.image_encoder),
        input_size=model.input_size,
        resize=dict(resize),
        dtype=str(dtype).replace('torch.', ''),
        config=osp.abspath(args.config))
    settings = settings_digest(meta)
    entries = []
    mine = img_paths[rank::world_size]
    progress = ProgressBar(len(mine)) if is_main_process() else None
    for img_path in mine:
        results = load(dict(img_path=img_path))
        for direction in directions:
            view = embedding_view(direction is not None, direction)
            name = file_name(img_path, view, settings)
            img = results['img']
            if direction == 'horizontal':
                img = img[:, ::-1]
            elif direction == 'vertical':
                img = img[::-1]
            elif direction == 'diagonal':
                img = img[::-1, ::-1]
            entries.append((img_path, view, name, list(img.shape[:2])))
            path = osp.join(args.out, name)
            if osp.isfile(path):
                continue  # extracted by an earlier, interrupted run
            pixels = torch.from_numpy(img.copy()).permute(2, 0, 1)
            data = model.data_preprocessor(
                dict(inputs=[pixels], data_samples=[SegDataSample()]), False)
            with torch.no_grad():
                embedding = model.image_encoder(data['inputs'])[0]
            save_tensor_file(embedding.to(dtype), path)
        if progress is not None:
            progress.update()
    entries = [entry for part in all_gather_object(entries)
               for entry in part]
    index_path = osp.join(args.out, INDEX_FILE)
    if is_main_process():
        files: dict = {}
        for img_path, view, name, shape in entries:
            files.setdefault(img_path, {})[view] = dict(
                file=name, img_shape=shape)
        index = dict(meta=meta, files=files)
        handle, tmp = tempfile.mkstemp(dir=args.out, suffix='.tmp')
        with os.fdopen(handle, 'w', encoding='utf-8') as f:
            json.dump(index, f)
        os.replace(tmp, index_path)
        print(f'\n{len(entries)} embeddings of {len(img_paths)} images, '
              f'index {index_path}')
    barrier()
    release_process_group()
    return index_path


if __name__ == '__main__':
    main()
