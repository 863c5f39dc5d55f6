# Copyright (c) samref contributors. All rights reserved.
from .dist import free_port, prepare_cpu_distributed, release_process_group
from .embedding_store import EmbeddingStore, encoder_fingerprint, tensor_digest
from .host_memory import apply_malloc_cfg, set_malloc_thresholds
from .image_files import (MAX_IMAGE_PIXELS, ImageFileError, check_image_array,
                          read_image, read_image_size)
from .safe_load import (ForeignObject, load_checkpoint_file, load_tensor_file,
                        resolve_checkpoint, save_tensor_file)
from .torchvision_fallback import (import_segment_anything,
                                   torchvision_available)
from .weights import (checkpoint_key_report, format_key_report,
                      load_model_weights)

__all__ = [
    'import_segment_anything', 'torchvision_available', 'ForeignObject',
    'load_checkpoint_file', 'load_tensor_file', 'save_tensor_file',
    'resolve_checkpoint', 'checkpoint_key_report', 'format_key_report',
    'load_model_weights', 'MAX_IMAGE_PIXELS', 'ImageFileError', 'read_image',
    'read_image_size', 'prepare_cpu_distributed', 'release_process_group',
    'free_port', 'EmbeddingStore', 'encoder_fingerprint', 'tensor_digest',
    'check_image_array', 'set_malloc_thresholds', 'apply_malloc_cfg'
]
