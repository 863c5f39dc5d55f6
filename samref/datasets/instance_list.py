# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
from abc import ABCMeta, abstractmethod
from typing import List, Optional

import numpy as np

from .base import (DatasetLayoutError, InteractiveSegDataset, read_list_file,
                   require_dir)


class InstanceListDataset(InteractiveSegDataset, metaclass=ABCMeta):
    """Images named by a list file, with one instance-id map each.

    Every id of the map other than 0 (background) and ``IGNORE_ID`` is one
    object. Subclasses say how a map is read.

    Args:
        data_root (str): The dataset folder.
        ann_file (str): The list of image names, relative to ``data_root``.
        **kwargs: See :class:`InteractiveSegDataset`.
    """

    # The id of ignored pixels in the maps, if the dataset has one.
    IGNORE_ID: Optional[int] = None

    @abstractmethod
    def read_instances(self, path: str) -> np.ndarray:
        """Read the ``H x W`` instance-id map of one image.

        Args:
            path (str): The map's file.

        Returns:
            np.ndarray: Instance ids.
        """

    def load_data_list(self) -> List[dict]:
        """One item per listed image, one object per instance id.

        Returns:
            list[dict]: The items.

        Raises:
            DatasetLayoutError: A folder, a listed image or its map is
                missing, or a map holds no instance.
        """
        img_dir = require_dir(self.data_prefix['img_path'], 'image')
        map_dir = require_dir(self.data_prefix['seg_map_path'], 'instance')
        items = []
        for name in read_list_file(self.ann_file):
            img_path = osp.join(img_dir, name + self.img_suffix[0])
            map_path = osp.join(map_dir, name + self.seg_map_suffix[0])
            if not osp.isfile(img_path):
                raise DatasetLayoutError(
                    f'{self.ann_file} lists {name}, but {img_path} does not '
                    'exist')
            if not osp.isfile(map_path):
                raise DatasetLayoutError(
                    f'image {img_path} has no instance map: expected '
                    f'{map_path}')
            ids = np.unique(self.read_instances(map_path))
            objects = [
                dict(
                    seg_map_path=map_path,
                    mask_format=self.mask_format,
                    instance_id=int(i)) for i in ids
                if i != 0 and i != self.IGNORE_ID
            ]
            if not objects:
                raise DatasetLayoutError(f'{map_path} holds no instance')
            items.append(self.make_item(img_path, objects))
        return items
