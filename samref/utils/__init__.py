# Copyright (c) samref contributors. All rights reserved.
from .checkpoint import (checkpoint_key_report, format_key_report,
                         load_checkpoint_file, load_model_weights,
                         trusted_checkpoints)
from .dist import prepare_cpu_distributed
from .torchvision_fallback import (import_segment_anything,
                                   torchvision_available)

__all__ = [
    'import_segment_anything', 'torchvision_available',
    'checkpoint_key_report', 'format_key_report', 'load_checkpoint_file',
    'load_model_weights', 'trusted_checkpoints', 'prepare_cpu_distributed'
]
