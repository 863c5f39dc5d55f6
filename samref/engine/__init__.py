# Copyright (c) samref contributors. All rights reserved.
from .embedding_cache import EmbeddingCache, encoder_fingerprint
from .embedding_check_hook import EmbeddingCheckHook
from .interactive_test_loop import InteractiveTestLoop
from .runner import SafeLoadRunner, build_runner, job_config

__all__ = [
    'EmbeddingCache', 'EmbeddingCheckHook', 'encoder_fingerprint',
    'InteractiveTestLoop', 'SafeLoadRunner', 'build_runner', 'job_config'
]
