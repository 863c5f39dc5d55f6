# Copyright (c) samref contributors. All rights reserved.
import logging
from itertools import chain
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from ..utils.embedding_store import EmbeddingStore, encoder_fingerprint


class _Forward(nn.Module):
    """Runs a module's ``forward`` without the module's own hooks."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args) -> torch.Tensor:
        return self.module.forward(*args)


class EmbeddingCache:
    """The evaluation's image embeddings, kept in an :class:`EmbeddingStore`.

    An entry is found only for the same model input (the resized,
    normalised, padded image, compared by digest), the same precision and
    an encoder with the same class and weights, so a stale or foreign
    embedding is never used. An entry that cannot be read, or whose shape
    or dtype is not the encoder's output, is reported with its path and
    treated as a miss, so it is computed and written again. A second
    evaluation of the same data skips the image encoder entirely; a folder
    of pre-extracted training embeddings of the same encoder and precision
    serves as a cache too.

    Args:
        cache_dir (str): The store's root folder.
        encoder (nn.Module): The image encoder whose outputs are cached.
    """

    def __init__(self, cache_dir: str, encoder: nn.Module) -> None:
        self.store = EmbeddingStore(cache_dir, encoder_fingerprint(encoder))
        self.encoder = encoder
        self.hits = 0
        self.misses = 0
        self._outputs: Dict[Tuple[int, ...], Tuple[Tuple[int, ...],
                                                   torch.dtype]] = {}
        self._last_key: Optional[Tuple[torch.Tensor, str]] = None

    @property
    def folder(self) -> str:
        """The folder of this encoder's entries."""
        return self.store.folder

    def output_spec(
            self, inputs: torch.Tensor) -> Tuple[Tuple[int, ...], torch.dtype]:
        """The shape and dtype of the encoder's output for such inputs.

        Found once per input shape and dtype by running the encoder's
        ``forward`` on the meta device (no data, no computation; forward
        hooks registered on the encoder do not see it).

        Args:
            inputs (torch.Tensor): A model input.

        Returns:
            tuple: The embedding's shape and dtype.
        """
        spec = (tuple(inputs.shape), inputs.dtype)
        if spec not in self._outputs:
            wrapper = _Forward(self.encoder)
            tensors = {
                name: value.to('meta')
                for name, value in chain(wrapper.named_parameters(),
                                         wrapper.named_buffers())
            }
            with torch.no_grad():
                output = torch.func.functional_call(
                    wrapper, tensors,
                    (torch.empty(spec[0], dtype=spec[1], device='meta'), ))
            self._outputs[spec] = (tuple(output.shape), output.dtype)
        return self._outputs[spec]

    def key(self, inputs: torch.Tensor) -> str:
        """The store key of the embedding of ``inputs``.

        A miss is followed by :meth:`put` with the same input tensor: its
        key (a digest of the whole input) is kept for that tensor, so it is
        computed once per image.
        """
        if self._last_key is None or self._last_key[0] is not inputs:
            self._last_key = (inputs,
                              self.store.key(inputs,
                                             self.output_spec(inputs)[1]))
        return self._last_key[1]

    def get(self,
            inputs: torch.Tensor,
            count: bool = True) -> Optional[torch.Tensor]:
        """The cached embedding of ``inputs``, or None.

        Args:
            inputs (torch.Tensor): The model input of one image.
            count (bool): Count the hit or miss (and report an unusable
                entry). Defaults to True.

        Returns:
            torch.Tensor | None: The embedding (``1 x C x h x w``, as the
            encoder gives it), on the CPU.
        """
        key = self.key(inputs)
        if key not in self.store:
            self.misses += count
            return None
        try:
            embedding = self.store.read(key)
        except RuntimeError as error:
            return self._reject(key, str(error), count)
        shape, dtype = self.output_spec(inputs)
        if (1, ) + tuple(embedding.shape) != shape or \
                embedding.dtype != dtype:
            return self._reject(
                key, f'it holds a {embedding.dtype} tensor of shape '
                f'{tuple(embedding.shape)}, the encoder gives {dtype} '
                f'{shape[1:]}', count)
        self.hits += count
        return embedding[None]

    def _reject(self, key: str, reason: str, count: bool) -> None:
        """Report an unusable entry and count it as a miss."""
        if count:
            print_log(
                f'embedding cache entry {self.store.path(key)} is not used '
                f'and will be recomputed: {reason}',
                logger='current',
                level=logging.WARNING)
            self.misses += 1
        return None

    def put(self, inputs: torch.Tensor, embedding: torch.Tensor) -> None:
        """Store the embedding of ``inputs``.

        Args:
            inputs (torch.Tensor): The model input of one image.
            embedding (torch.Tensor): Its embedding, ``1 x C x h x w``.
        """
        if len(embedding) != 1:
            raise ValueError('the cache stores one image at a time, got '
                             f'embeddings of shape {tuple(embedding.shape)}')
        self.store.write(self.key(inputs), embedding[0])
