# Copyright (c) samref contributors. All rights reserved.
from .checkpoint import (checkpoint_key_report, format_key_report,
                         load_checkpoint_file, load_model_weights,
                         load_tensor_file, resolve_checkpoint,
                         safe_checkpoint_globals)
from .dist import prepare_cpu_distributed, release_process_group
from .torchvision_fallback import (import_segment_anything,
                                   torchvision_available)

__all__ = [
    'import_segment_anything', 'torchvision_available',
    'checkpoint_key_report', 'format_key_report', 'load_checkpoint_file',
    'load_model_weights', 'load_tensor_file', 'resolve_checkpoint',
    'safe_checkpoint_globals', 'prepare_cpu_distributed',
    'release_process_group'
]
