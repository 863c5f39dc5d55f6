# Copyright (c) samref contributors. All rights reserved.
"""samref: SAM-REF and interactive segmentation on OpenMMLab.

Importing the package registers every component into the mmseg/mmengine
registries (configs do it with ``custom_imports=dict(imports=['samref'])``)
and the ``samref::`` config scope. It changes nothing else in the process: no
matplotlib backend is chosen and mmengine's checkpoint loaders are left as
they are.
"""
from .utils.torchvision_fallback import import_segment_anything

# segment_anything imports torchvision at package import; this makes that
# import work on CPU-only machines before any model module needs it.
import_segment_anything()

from . import apis, datasets, engine, evaluation, models  # noqa: E402,F401
from .registry import register_config_scope  # noqa: E402
from .version import __version__, version_info  # noqa: E402

# Configs of other projects inherit ours as ``samref::<folder>/<file>.py``.
register_config_scope()

__all__ = ['__version__', 'version_info']
