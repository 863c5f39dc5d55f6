# Copyright (c) samref contributors. All rights reserved.
import json
import os
import os.path as osp
import tempfile
from typing import List, Optional

import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dist import (all_gather_object, barrier, get_dist_info,
                           is_main_process)
from mmengine.utils import ProgressBar
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

from ..datasets.transforms.image_embedding import INDEX_FILE, embedding_view
from ..models.segmentors import BaseInteractiveSegmentor
from ..utils.embedding_store import EmbeddingStore, encoder_fingerprint

# The flips RandomFlip makes, as index operations on an H x W x C image.
FLIPS = {
    None: (slice(None), slice(None)),
    'horizontal': (slice(None), slice(None, None, -1)),
    'vertical': (slice(None, None, -1), slice(None)),
    'diagonal': (slice(None, None, -1), slice(None, None, -1)),
}


def find_transform(pipeline: list, name: str) -> Optional[dict]:
    """The first transform config of a type, also inside wrappers.

    Args:
        pipeline (list[dict]): Transform configs.
        name (str): A transform type.

    Returns:
        dict | None: Its config.
    """
    for transform in pipeline:
        if transform.get('type') == name:
            return transform
        found = find_transform(transform.get('transforms', []), name)
        if found is not None:
            return found
    return None


@torch.no_grad()
def extract_embeddings(cfg: Config,
                       model: BaseInteractiveSegmentor,
                       out_dir: str,
                       dtype: torch.dtype = torch.float16,
                       show_progress: bool = True) -> str:
    """Encode every training image of a config once per view.

    Every image of ``train_dataloader.dataset`` is resized as the training
    pipeline resizes it; its views (the image and, when the pipeline flips,
    its flipped copies) are encoded into an :class:`EmbeddingStore` at
    ``out_dir`` (the evaluation cache's key scheme: at the same precision
    the folder serves ``tools/test.py --embedding-cache`` too), and
    ``index.json`` lists
    the encoder's digest, the input size and the store key of each image
    view. Entries already in the store are kept, so an interrupted run
    resumes where it stopped, and views with the same model input (a
    picture shared by several objects' image files) are encoded once. In a
    distributed run each rank encodes its share and the main process
    writes the index.

    Args:
        cfg (Config): The training config (``LoadImageEmbedding`` reads
            the folder with its pipeline).
        model (BaseInteractiveSegmentor): The model whose image encoder
            makes the embeddings.
        out_dir (str): The folder.
        dtype (torch.dtype): Precision of the stored embeddings. Defaults to
            float16.
        show_progress (bool): Show a progress bar. Defaults to True.

    Returns:
        str: The index file.

    Raises:
        ValueError: The training pipeline has no ``Resize``.
    """
    rank, world_size = get_dist_info()
    pipeline = cfg.train_dataloader.dataset.get('pipeline') or \
        cfg.get('train_pipeline', [])
    resize = find_transform(pipeline, 'Resize')
    if resize is None:
        raise ValueError('the training pipeline has no Resize; nothing '
                         'tells how large the embedded images are')
    flip = find_transform(pipeline, 'RandomFlip')
    directions: List[Optional[str]] = [None]
    if flip is not None:
        direction = flip.get('direction', 'horizontal')
        directions += direction if isinstance(direction, list) else \
            [direction]
    load = Compose([dict(type='LoadImageWithPixelLimit'), dict(resize)])
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=[]))
    img_paths = sorted({
        sub.get_data_info(i)['img_path']
        for sub in getattr(dataset, 'datasets', [dataset])
        for i in range(len(sub))
    })
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(
        encoder=encoder_fingerprint(model.image_encoder),
        input_size=model.input_size,
        resize=dict(resize),
        dtype=str(dtype).replace('torch.', ''),
        config=osp.abspath(cfg.filename) if cfg.filename else None)
    store = EmbeddingStore(out_dir, meta['encoder'])
    entries = []
    mine = img_paths[rank::world_size]
    progress = ProgressBar(len(mine)) \
        if show_progress and is_main_process() else None
    for img_path in mine:
        image = load(dict(img_path=img_path))['img']
        for direction in directions:
            img = image[FLIPS[direction]]
            data = model.data_preprocessor(
                dict(
                    inputs=[torch.from_numpy(img.copy()).permute(2, 0, 1)],
                    data_samples=[SegDataSample()]), False)
            key = store.key(data['inputs'], dtype)
            if key not in store:
                store.write(key,
                            model.image_encoder(data['inputs'])[0].to(dtype))
            entries.append(
                (img_path, embedding_view(direction
                                          is not None, direction), key,
                 list(img.shape[:2])))
        if progress is not None:
            progress.update()
    entries = [entry for part in all_gather_object(entries) for entry in part]
    index_path = osp.join(out_dir, INDEX_FILE)
    if is_main_process():
        files: dict = {}
        for img_path, view, key, shape in entries:
            files.setdefault(img_path, {})[view] = dict(
                key=key, img_shape=shape)
        handle, tmp = tempfile.mkstemp(dir=out_dir, suffix='.tmp')
        with os.fdopen(handle, 'w', encoding='utf-8') as f:
            json.dump(dict(meta=meta, files=files), f)
        os.replace(tmp, index_path)
    barrier()
    return index_path
