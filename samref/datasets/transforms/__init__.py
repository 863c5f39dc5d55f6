# Copyright (c) samref contributors. All rights reserved.
from .formatting import PackInteractiveInputs
from .loading import LoadObjectMasks

__all__ = ['LoadObjectMasks', 'PackInteractiveInputs']
