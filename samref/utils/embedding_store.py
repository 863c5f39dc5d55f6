# Copyright (c) samref contributors. All rights reserved.
import hashlib
import os
import os.path as osp

import torch
from torch import nn

from .safe_load import load_tensor_file, save_tensor_file


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-1 of a tensor's dtype, shape and values.

    Args:
        tensor (torch.Tensor): Any tensor, on any device.

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


class EmbeddingStore:
    """Image embeddings on disk under one key scheme.

    An embedding is the file ``<root>/<encoder digest[:20]>/<model input
    digest>-<dtype>.safetensors``:
    one image's ``C x h x w`` embedding, named by the encoder's class and
    weights, the exact model input (the resized, normalised, padded image)
    and the stored precision, and by nothing else (not the image's path,
    not the config). The evaluation cache (``InteractiveTestLoop``'s
    ``embedding_cache``) and the pre-extracted
    training embeddings (``tools/extract_embeddings.py``, read by
    ``LoadImageEmbedding``) are both stores, so one folder can serve both
    and the same picture is never encoded twice for one precision. Files
    are safetensors (a format with no code path), written atomically.

    Args:
        root (str): The store's folder.
        encoder_digest (str): :func:`encoder_fingerprint` of the encoder
            whose embeddings are stored.
    """

    def __init__(self, root: str, encoder_digest: str) -> None:
        self.root = root
        self.folder = osp.join(root, encoder_digest[:20])

    @staticmethod
    def key(inputs: torch.Tensor, dtype: torch.dtype) -> str:
        """The key of the embedding of a model input.

        Args:
            inputs (torch.Tensor): The model input of one image.
            dtype (torch.dtype): The embedding's stored precision.

        Returns:
            str: ``<input digest>-<dtype name>``.
        """
        return f'{tensor_digest(inputs)}-{str(dtype).replace("torch.", "")}'

    def path(self, key: str) -> str:
        """The file of an entry."""
        return osp.join(self.folder, f'{key}.safetensors')

    def __contains__(self, key: str) -> bool:
        return osp.isfile(self.path(key))

    def read(self, key: str) -> torch.Tensor:
        """Read an entry.

        Args:
            key (str): Its key.

        Returns:
            torch.Tensor: The embedding, on the CPU.

        Raises:
            FileNotFoundError: No such entry.
            RuntimeError: The file is not a single-tensor safetensors file
                (the message names it).
        """
        path = self.path(key)
        if not osp.isfile(path):
            raise FileNotFoundError(f'no embedding {path}')
        return load_tensor_file(path)

    def write(self, key: str, embedding: torch.Tensor) -> None:
        """Store an entry (atomically; an existing one is replaced).

        Args:
            key (str): Its key (:meth:`key` with ``embedding``'s dtype).
            embedding (torch.Tensor): The embedding, on any device.
        """
        if not key.endswith('-' + str(embedding.dtype).replace('torch.', '')):
            raise ValueError(f'key {key} is not for a {embedding.dtype} '
                             'embedding')
        os.makedirs(self.folder, exist_ok=True)
        save_tensor_file(embedding, self.path(key))
