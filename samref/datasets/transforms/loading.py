# Copyright (c) samref contributors. All rights reserved.
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..mask_formats import MaskFileError, decode_mask, read_raw_mask


@TRANSFORMS.register_module()
class LoadObjectMasks(BaseTransform):
    """Read and decode the masks of all objects of an image.

    Required keys: ``objects`` (from an ``InteractiveSegDataset``),
    ``img_path`` and ``ori_shape`` (from ``LoadImageFromFile``).

    Added keys: ``gt_object_masks``, a ``K x H x W`` int8 array with 1 for
    the object, 0 for background and -1 for ignored pixels, at the original
    image size (interactive metrics are computed there).

    A file shared by several objects (an instance map) is read once.
    """

    def transform(self, results: dict) -> dict:
        """Load the object masks.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``results`` with ``gt_object_masks``.

        Raises:
            MaskFileError: A mask cannot be read, its size differs from the
                image's or it has no object pixel; the message names the
                file.
        """
        if not results['objects']:
            raise MaskFileError(f'image {results["img_path"]} has no object')
        height, width = results['ori_shape'][:2]
        raw: Dict[str, np.ndarray] = {}
        masks = []
        for obj in results['objects']:
            path = obj['seg_map_path']
            if path not in raw:
                raw[path] = read_raw_mask(path)
            if raw[path].shape != (height, width):
                raise MaskFileError(
                    f'mask {path} is {raw[path].shape[1]}x'
                    f'{raw[path].shape[0]} but image {results["img_path"]} '
                    f'is {width}x{height}')
            mask = decode_mask(raw[path], obj['mask_format'],
                               obj.get('instance_id'))
            if not (mask == 1).any():
                raise MaskFileError(
                    f'mask {path} has no object pixel'
                    + (f' for instance {obj["instance_id"]}'
                       if obj.get('instance_id') is not None else ''))
            masks.append(mask)
        results['gt_object_masks'] = np.stack(masks)
        return results
