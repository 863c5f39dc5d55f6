# Copyright (c) samref contributors. All rights reserved.
from mmseg.registry import DATASETS

from .base import InteractiveSegDataset


@DATASETS.register_module()
class COCOMValDataset(InteractiveSegDataset):
    """COCO-MVal: 800 COCO objects, 10 per category.

    Images ``img/*.jpg``, 0/255 masks ``gt/<stem>.png``.

    Args:
        data_root (str): The dataset folder.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='COCO-MVal')
    LAYOUT = dict(
        data_prefix=dict(img_path='img', seg_map_path='gt'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        mask_format='nonzero')
