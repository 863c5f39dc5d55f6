# Copyright (c) samref contributors. All rights reserved.
import hashlib
import logging
import os
import os.path as osp
from itertools import chain
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from ..utils.safe_load import load_tensor_file, save_tensor_file


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


class _Forward(nn.Module):
    """Runs a module's ``forward`` without the module's own hooks."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args) -> torch.Tensor:
        return self.module.forward(*args)


class EmbeddingCache:
    """Image embeddings on disk, keyed by image content and encoder.

    An entry is found only for the same model input (the resized,
    normalised, padded image, compared by digest) and an encoder with the
    same class and weights, so a stale or foreign embedding is never used.
    Entries are safetensors files written atomically (a format with no code
    path); an entry that cannot be read, or whose shape is not the
    encoder's output shape, is reported with its path and treated as a
    miss, so it is computed and written again, and so is an entry of the
    earlier pickle format (``.pt``), which is never read. A second
    evaluation of the same data skips the image encoder entirely.

    Args:
        cache_dir (str): Root folder; entries go to
            ``<cache_dir>/<encoder digest>/<input digest>.safetensors``.
        encoder (nn.Module): The image encoder whose outputs are cached.
    """

    def __init__(self, cache_dir: str, encoder: nn.Module) -> None:
        self.folder = osp.join(cache_dir, encoder_fingerprint(encoder)[:20])
        os.makedirs(self.folder, exist_ok=True)
        self.encoder = encoder
        self.hits = 0
        self.misses = 0
        self._shapes: Dict[Tuple[int, ...], Tuple[int, ...]] = {}

    def output_shape(self, inputs: torch.Tensor) -> Tuple[int, ...]:
        """The shape of the encoder's output for inputs of this shape.

        Found once per input shape by running the encoder's ``forward`` on
        the meta device (no data, no computation; forward hooks registered
        on the encoder do not see it).

        Args:
            inputs (torch.Tensor): A model input.

        Returns:
            tuple[int, ...]: The embedding shape.
        """
        key = tuple(inputs.shape)
        if key not in self._shapes:
            wrapper = _Forward(self.encoder)
            tensors = {
                name: value.to('meta')
                for name, value in chain(wrapper.named_parameters(),
                                         wrapper.named_buffers())
            }
            with torch.no_grad():
                output = torch.func.functional_call(
                    wrapper, tensors,
                    (torch.empty(key, dtype=inputs.dtype, device='meta'), ))
            self._shapes[key] = tuple(output.shape)
        return self._shapes[key]

    def path(self, inputs: torch.Tensor) -> str:
        """The file of the entry for a model input."""
        return osp.join(self.folder, tensor_digest(inputs) + '.safetensors')

    def get(self,
            inputs: torch.Tensor,
            count: bool = True) -> Optional[torch.Tensor]:
        """The cached embedding of ``inputs``, or None.

        Args:
            inputs (torch.Tensor): The model input.
            count (bool): Count the hit or miss (and report an unusable
                entry). Defaults to True.

        Returns:
            torch.Tensor | None: The embedding, on the CPU.
        """
        path = self.path(inputs)
        if not osp.isfile(path):
            old = osp.splitext(path)[0] + '.pt'
            if osp.isfile(old):
                return self._reject(
                    old, 'it is in the earlier pickle format, which is not '
                    'read', count)
            self.misses += count
            return None
        try:
            embedding = load_tensor_file(path)
        except RuntimeError as error:
            return self._reject(path, str(error), count)
        expected = self.output_shape(inputs)
        if tuple(embedding.shape) != expected or \
                not embedding.is_floating_point():
            return self._reject(
                path, f'it holds a {embedding.dtype} tensor of shape '
                f'{tuple(embedding.shape)}, the encoder gives {expected}',
                count)
        self.hits += count
        return embedding

    def _reject(self, path: str, reason: str, count: bool) -> None:
        """Report an unusable entry and count it as a miss."""
        if count:
            print_log(
                f'embedding cache entry {path} is not used and will be '
                f'recomputed: {reason}',
                logger='current',
                level=logging.WARNING)
            self.misses += 1
        return None

    def put(self, inputs: torch.Tensor, embedding: torch.Tensor) -> None:
        """Store the embedding of ``inputs``.

        Args:
            inputs (torch.Tensor): The model input.
            embedding (torch.Tensor): Its embedding.
        """
        save_tensor_file(embedding, self.path(inputs))
