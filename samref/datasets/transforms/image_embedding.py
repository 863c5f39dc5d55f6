# Copyright (c) samref contributors. All rights reserved.
import json
import os.path as osp
from typing import Dict, Optional

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...utils.embedding_store import EmbeddingStore

INDEX_FILE = 'index.json'


def embedding_view(flip: bool, flip_direction: Optional[str]) -> str:
    """Name of an image view: ``'orig'`` or ``'flip-<direction>'``."""
    return f'flip-{flip_direction}' if flip else 'orig'


def read_embedding_index(folder: str) -> dict:
    """Read ``index.json`` of a folder of pre-extracted embeddings.

    Args:
        folder (str): Output folder of ``tools/extract_embeddings.py``.

    Returns:
        dict: ``meta`` (encoder digest, input size, dtype) and ``files``
        (``{img_path: {view: {'key': store key, 'img_shape': [h, w]}}}``).
    """
    path = osp.join(folder, INDEX_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'no embedding index {path}; run tools/extract_embeddings.py '
            'for this config first')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@TRANSFORMS.register_module()
class LoadImageEmbedding(BaseTransform):
    """Attach the pre-extracted SAM embedding of a packed sample's view.

    Goes after ``PackSegInputs``: the sample's ``img_path`` and flip give
    the view, whose embedding (written by ``tools/extract_embeddings.py``)
    becomes ``data_samples.image_embeddings``; the model then skips its
    image encoder. Views are the resized image and its flips; pixel-level
    augmentations (photometric distortion) reach the refiners' image input
    but not these embeddings. The folder is an :class:`EmbeddingStore`
    (safetensors files, a format with no code path) with ``index.json``;
    a folder extracted in an earlier layout (file names in the index,
    pickle ``.pt`` files) is refused with the advice to extract it again.
    :class:`SafeLoadRunner` checks the folder against
    the model before training (``EmbeddingCheckHook``, added
    automatically): a folder made by another encoder or for another input
    size is refused.

    Args:
        embedding_dir (str): Output folder of
            ``tools/extract_embeddings.py``.
    """

    def __init__(self, embedding_dir: str) -> None:
        self.embedding_dir = embedding_dir
        self._files: Optional[Dict[str, Dict[str, dict]]] = None
        self._store: Optional[EmbeddingStore] = None

    def transform(self, results: dict) -> dict:
        """Load the embedding of the sample's view.

        Args:
            results (dict): Packed results (``inputs``, ``data_samples``).

        Returns:
            dict: ``results`` with ``data_samples.image_embeddings``.
        """
        if self._files is None:  # read once per worker process
            index = read_embedding_index(self.embedding_dir)
            self._files = index['files']
            self._store = EmbeddingStore(self.embedding_dir,
                                         index['meta']['encoder'])
        sample = results['data_samples']
        img_path = sample.metainfo['img_path']
        view = embedding_view(
            sample.metainfo.get('flip', False),
            sample.metainfo.get('flip_direction'))
        try:
            entry = self._files[img_path][view]
        except KeyError:
            raise KeyError(f'no embedding of {img_path} ({view}) in '
                           f'{self.embedding_dir}; extract the embeddings '
                           'again for this dataset') from None
        if 'key' not in entry:
            raise ValueError(
                f'{self.embedding_dir} was extracted in an earlier layout '
                '(file names, not store keys, in its index), which is not '
                'read; extract the embeddings again with '
                'tools/extract_embeddings.py')
        if list(sample.metainfo['img_shape']) != entry['img_shape']:
            raise ValueError(
                f'{img_path} is resized to {sample.metainfo["img_shape"]} '
                f'but its embedding in {self.embedding_dir} was made at '
                f'{entry["img_shape"]}: the training resize must be the '
                'extraction resize')
        embedding = self._store.read(entry['key'])
        path = self._store.path(entry['key'])
        if embedding.ndim != 3 or not embedding.is_floating_point():
            raise ValueError(
                f'{path} holds a {embedding.dtype} tensor of shape '
                f'{tuple(embedding.shape)}, not a C x h x w embedding; '
                'extract the embeddings again')
        sample.image_embeddings = embedding.float()
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(embedding_dir={self.embedding_dir!r})'
