# Copyright (c) samref contributors. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample


@TRANSFORMS.register_module()
class PackInteractiveInputs(BaseTransform):
    """Pack an image and its object masks for an interactive segmentor.

    Added keys: ``inputs`` (``3 x h x w`` uint8 tensor of the resized image)
    and ``data_samples``, a ``SegDataSample`` with ``gt_object_masks``
    (``K x H x W`` int8 tensor at the original size) and the meta keys.

    Args:
        meta_keys (Sequence[str]): Keys copied into the sample's metainfo
            when present.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape', 'scale_factor',
                                             'dataset_name', 'subset',
                                             'objects')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the results.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0,
                                                                     1)))
        sample = SegDataSample()
        if 'gt_object_masks' in results:
            sample.gt_object_masks = torch.from_numpy(
                results['gt_object_masks'])
        sample.set_metainfo(
            {k: results[k]
             for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
