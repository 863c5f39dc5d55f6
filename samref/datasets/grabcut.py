# Copyright (c) samref contributors. All rights reserved.
from mmseg.registry import DATASETS

from .base import InteractiveSegDataset


@DATASETS.register_module()
class GrabCutDataset(InteractiveSegDataset):
    """GrabCut (Rother et al. 2004) in the common RITM layout.

    Images ``data_GT/*.jpg|bmp``, masks ``boundary_GT/<stem>.bmp``; 128
    marks the unsure band (ignored), values above 128 the object. 50
    objects.

    Args:
        data_root (str): The dataset folder.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='GrabCut')
    LAYOUT = dict(
        data_prefix=dict(img_path='data_GT', seg_map_path='boundary_GT'),
        img_suffix=('.jpg', '.bmp'),
        seg_map_suffix='.bmp',
        mask_format='grabcut')
