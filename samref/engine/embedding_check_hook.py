# Copyright (c) samref contributors. All rights reserved.
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..datasets.transforms.image_embedding import (LoadImageEmbedding,
                                                   read_embedding_index)
from ..utils.embedding_store import encoder_fingerprint


def find_embedding_loaders(dataset) -> list:
    """The ``LoadImageEmbedding`` transforms of a (concatenated) dataset."""
    found = []
    for sub in getattr(dataset, 'datasets', [dataset]):
        pipeline = getattr(sub, 'pipeline', None)
        for transform in getattr(pipeline, 'transforms', []):
            if isinstance(transform, LoadImageEmbedding):
                found.append(transform)
    return found


@HOOKS.register_module()
class EmbeddingCheckHook(Hook):
    """Refuse pre-extracted embeddings that do not fit the model.

    Before training it compares the index of every ``LoadImageEmbedding``
    folder of the training data with the model: the image encoder's digest
    (class and weights) and the input size must match, otherwise training
    stops with an error naming the folder. :class:`SafeLoadRunner` adds it
    when the config does not, so the check cannot be forgotten.
    """

    def before_train(self, runner) -> None:
        """Check the embedding folders against the model.

        Args:
            runner (Runner): The runner.
        """
        loaders = find_embedding_loaders(runner.train_dataloader.dataset)
        if not loaders:
            return
        model = getattr(runner.model, 'module', runner.model)
        digest = encoder_fingerprint(model.image_encoder)
        for loader in loaders:
            meta = read_embedding_index(loader.embedding_dir)['meta']
            if meta.get('encoder') != digest:
                raise RuntimeError(
                    f'embeddings in {loader.embedding_dir} were made by '
                    'another image encoder (its weights differ); extract '
                    'them again with this model')
            if meta.get('input_size') != model.input_size:
                raise RuntimeError(
                    f'embeddings in {loader.embedding_dir} are for input '
                    f'size {meta.get("input_size")}, the model takes '
                    f'{model.input_size}')
