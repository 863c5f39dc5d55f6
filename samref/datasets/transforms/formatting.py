# Copyright (c) samref contributors. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from ..mask_formats import IGNORE, OBJECT


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

    def __init__(
        self,
        meta_keys: Sequence[str] = ('img_path', 'ori_shape', 'img_shape',
                                    'scale_factor', 'dataset_name', 'subset')
    ) -> None:
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
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
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


@TRANSFORMS.register_module()
class ObjectMaskToSegMap(BaseTransform):
    """Turn the one object mask of a training sample into mmseg's
    ``gt_seg_map``, so that mmseg's ``Resize`` (nearest), ``RandomFlip``,
    ``RandomCrop``, ``Pad``, ``PhotoMetricDistortion`` and
    ``PackSegInputs`` (``gt_sem_seg``) handle it unchanged.

    ``gt_object_masks`` is removed, so that no mask is left that later
    transforms do not resize or flip.

    Required keys: ``gt_object_masks`` (``1 x H x W`` int8, from
    ``SampleObject`` and ``LoadObjectMasks``).

    Added keys: ``gt_seg_map`` (``H x W`` uint8: 0 background, 1 object,
    255 ignore) and ``'gt_seg_map'`` in ``seg_fields``.

    Args:
        ignore_index (int): Value of ignored pixels. Defaults to 255, as
            mmseg's ``ignore_index`` and ``Pad``'s ``seg`` value.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Convert the mask.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``results`` with ``gt_seg_map``.

        Raises:
            RuntimeError: There is not exactly one object mask, a pipeline
                error that ``SkipBadSample`` does not take for bad data.
        """
        masks = results.pop('gt_object_masks')
        if masks.shape[0] != 1:
            raise RuntimeError(
                f'ObjectMaskToSegMap needs exactly one object mask, image '
                f'{results.get("img_path")} has {masks.shape[0]}; put '
                'SampleObject before LoadObjectMasks')
        seg_map = np.where(masks[0] == OBJECT, 1, 0).astype(np.uint8)
        seg_map[masks[0] == IGNORE] = self.ignore_index
        results['gt_seg_map'] = seg_map
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ignore_index={self.ignore_index})'
