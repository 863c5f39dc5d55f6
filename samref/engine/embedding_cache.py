# Copyright (c) samref contributors. All rights reserved.
import hashlib
import os
import os.path as osp
import tempfile
from typing import Optional

import torch
from torch import nn

from ..utils.checkpoint import load_checkpoint_file


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-1 of a tensor's dtype, shape and values.

    Args:
        tensor (torch.Tensor): Any tensor.

    Returns:
        str: Hex digest.
    """
    digest = hashlib.sha1(f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def encoder_fingerprint(encoder: nn.Module) -> str:
    """A digest that changes with the encoder's class or any of its weights.

    Args:
        encoder (nn.Module): The image encoder.

    Returns:
        str: Hex digest.
    """
    digest = hashlib.sha1(type(encoder).__qualname__.encode())
    for name, value in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor_digest(value).encode())
    return digest.hexdigest()


class EmbeddingCache:
    """Image embeddings on disk, keyed by image content and encoder.

    An entry is found only for the same model input (the resized,
    normalised, padded image, compared by digest) and an encoder with the
    same class and weights, so a stale or foreign embedding is never used.
    Entries are written atomically; a second evaluation of the same data
    skips the image encoder entirely.

    Args:
        cache_dir (str): Root folder; entries go to
            ``<cache_dir>/<encoder digest>/<input digest>.pt``.
        encoder (nn.Module): The image encoder whose outputs are cached.
    """

    def __init__(self, cache_dir: str, encoder: nn.Module) -> None:
        self.folder = osp.join(cache_dir, encoder_fingerprint(encoder)[:20])
        os.makedirs(self.folder, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def path(self, inputs: torch.Tensor) -> str:
        """The file of the entry for a model input."""
        return osp.join(self.folder, tensor_digest(inputs) + '.pt')

    def get(self, inputs: torch.Tensor) -> Optional[torch.Tensor]:
        """The cached embedding of ``inputs``, or None.

        Args:
            inputs (torch.Tensor): The model input.

        Returns:
            torch.Tensor | None: The embedding, on the CPU.
        """
        path = self.path(inputs)
        if not osp.isfile(path):
            self.misses += 1
            return None
        self.hits += 1
        return load_checkpoint_file(path, map_location='cpu')

    def put(self, inputs: torch.Tensor, embedding: torch.Tensor) -> None:
        """Store the embedding of ``inputs``.

        Args:
            inputs (torch.Tensor): The model input.
            embedding (torch.Tensor): Its embedding.
        """
        path = self.path(inputs)
        handle, tmp = tempfile.mkstemp(dir=self.folder, suffix='.tmp')
        os.close(handle)
        try:
            torch.save(embedding.detach().cpu().clone(), tmp)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
