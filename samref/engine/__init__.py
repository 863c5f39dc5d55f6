# Copyright (c) samref contributors. All rights reserved.
from .embedding_cache import EmbeddingCache, encoder_fingerprint
from .interactive_test_loop import InteractiveTestLoop
from .runner import SafeLoadRunner

__all__ = [
    'EmbeddingCache', 'encoder_fingerprint', 'InteractiveTestLoop',
    'SafeLoadRunner'
]
