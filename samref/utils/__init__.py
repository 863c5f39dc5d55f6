# Copyright (c) samref contributors. All rights reserved.
from .checkpoint import load_checkpoint_file, trusted_checkpoints
from .torchvision_fallback import (import_segment_anything,
                                   torchvision_available)

__all__ = [
    'import_segment_anything', 'torchvision_available',
    'load_checkpoint_file', 'trusted_checkpoints'
]
