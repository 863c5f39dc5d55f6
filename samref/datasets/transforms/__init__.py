# Copyright (c) samref contributors. All rights reserved.
from .formatting import ObjectMaskToSegMap, PackInteractiveInputs
from .image_embedding import LoadImageEmbedding
from .loading import LoadImageWithPixelLimit, LoadObjectMasks
from .sampling import SampleObject
from .wrappers import SkipBadSample

__all__ = [
    'LoadImageEmbedding', 'LoadImageWithPixelLimit', 'LoadObjectMasks',
    'ObjectMaskToSegMap', 'PackInteractiveInputs', 'SampleObject',
    'SkipBadSample'
]
