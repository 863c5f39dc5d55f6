# Copyright (c) samref contributors. All rights reserved.
from .embedding_cache import EmbeddingCache
from .embedding_check_hook import EmbeddingCheckHook
from .interactive_test_loop import InteractiveTestLoop
from .interactive_val_loop import FirstObjects, InteractiveValLoop
from .portable_checkpoint_hook import PortableCheckpointHook
from .runner import SafeLoadRunner, build_runner, job_config

__all__ = [
    'EmbeddingCache', 'EmbeddingCheckHook', 'InteractiveTestLoop',
    'InteractiveValLoop', 'FirstObjects', 'PortableCheckpointHook',
    'SafeLoadRunner', 'build_runner', 'job_config'
]
