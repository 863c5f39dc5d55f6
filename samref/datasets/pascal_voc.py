# Copyright (c) samref contributors. All rights reserved.
import numpy as np
from mmseg.registry import DATASETS

from .instance_list import InstanceListDataset
from .mask_formats import read_mask_file


@DATASETS.register_module()
class PascalVOCInstanceDataset(InstanceListDataset):
    """PASCAL VOC 2012 val, one object per instance.

    (mmseg's ``PascalVOCDataset`` reads the semantic labels instead.)

    Images ``JPEGImages/<name>.jpg``, instance maps
    ``SegmentationObject/<name>.png`` (palette indices: instance ids, 255 is
    the ignored boundary), images listed in
    ``ImageSets/Segmentation/val.txt``.

    Args:
        data_root (str): The ``VOC2012`` folder.
        ann_file (str): The list of images, relative to ``data_root``.
            Defaults to ``'ImageSets/Segmentation/val.txt'``.
        **kwargs: See :class:`InstanceListDataset`.
    """
    METAINFO = dict(dataset_name='PascalVOC')
    LAYOUT = dict(
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationObject'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        mask_format='voc_instance')
    IGNORE_ID = 255

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'ImageSets/Segmentation/val.txt',
                 **kwargs) -> None:
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def read_instances(self, path: str) -> np.ndarray:
        """Read the instance-id map of one image.

        Args:
            path (str): The map's file.

        Returns:
            np.ndarray: ``H x W`` instance ids.
        """
        return read_mask_file(path)
