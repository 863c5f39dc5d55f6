# Copyright (c) samref contributors. All rights reserved.
import numpy as np
from mmseg.registry import DATASETS

from .instance_list import InstanceListDataset
from .mask_formats import read_sbd_instances


@DATASETS.register_module()
class SBDDataset(InstanceListDataset):
    """SBD (Hariharan et al. 2011), the interactive-segmentation split.

    Images ``img/<name>.jpg``, instances ``inst/<name>.mat``
    (``GTinst.Segmentation``); the images are those listed in ``val.txt``
    and every non-zero instance id of an image is one object.

    Args:
        data_root (str): The dataset folder.
        ann_file (str): The list of images, relative to ``data_root``.
            Defaults to ``'val.txt'``.
        **kwargs: See :class:`InstanceListDataset`.
    """
    METAINFO = dict(dataset_name='SBD')
    LAYOUT = dict(
        data_prefix=dict(img_path='img', seg_map_path='inst'),
        img_suffix='.jpg',
        seg_map_suffix='.mat',
        mask_format='sbd_instance')

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'val.txt',
                 **kwargs) -> None:
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def read_instances(self, path: str) -> np.ndarray:
        """Read the instance-id map of one image.

        Args:
            path (str): The map's file.

        Returns:
            np.ndarray: ``H x W`` instance ids.
        """
        return read_sbd_instances(path)
