# Copyright (c) samref contributors. All rights reserved.
from mmseg.registry import DATASETS

from .base import InteractiveSegDataset


@DATASETS.register_module()
class DAVISDataset(InteractiveSegDataset):
    """The 345 DAVIS frames of the interactive-segmentation benchmark.

    Images ``img/*.jpg``, masks ``gt/<stem>.png``; values above 0 are the
    object.

    Args:
        data_root (str): The dataset folder.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='DAVIS')
    LAYOUT = dict(
        data_prefix=dict(img_path='img', seg_map_path='gt'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        mask_format='nonzero')
