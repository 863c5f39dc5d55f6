# Copyright (c) samref contributors. All rights reserved.
from mmseg.registry import DATASETS

from .base import InteractiveSegDataset


@DATASETS.register_module()
class BerkeleyDataset(InteractiveSegDataset):
    """Berkeley (McGuinness and O'Connor 2010) in the common RITM layout.

    Images ``images/*.jpg``, masks ``masks/<stem>.png``; 128 is ignored,
    values above 128 are the object. 100 objects on 96 images.

    Args:
        data_root (str): The dataset folder.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='Berkeley')
    LAYOUT = dict(
        data_prefix=dict(img_path='images', seg_map_path='masks'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        mask_format='grabcut')
