# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine import fileio
from mmseg.registry import TRANSFORMS

from ...utils.image_files import MAX_IMAGE_PIXELS, decode_image
from ..mask_formats import (ANNOTATION_DECODERS, MaskFileError, decode_mask,
                            read_raw_mask)


def object_name(obj: dict) -> str:
    """How messages name an object: its mask file, or its annotation and
    the annotation file.

    Args:
        obj (dict): An object of a data item.

    Returns:
        str: E.g. ``'mask gt/a.png'`` or
        ``'annotation 17 of instances_train2017.json'``.
    """
    if obj['mask_format'] in ANNOTATION_DECODERS:
        return f'annotation {obj["ann_id"]} of {obj["seg_map_path"]}'
    return f'mask {obj["seg_map_path"]}'


def load_object_mask(obj: dict, raw: Dict[str, np.ndarray]) -> np.ndarray:
    """Decode one object's 1 / 0 / -1 map.

    Args:
        obj (dict): An object of a data item.
        raw (dict[str, np.ndarray]): Mask files already read, by path;
            a file read here is added, so that a file shared by several
            objects is read once.

    Returns:
        np.ndarray: ``H x W`` int8 map, at the size of the mask file or of
        the annotation's image.
    """
    if obj['mask_format'] in ANNOTATION_DECODERS:
        return ANNOTATION_DECODERS[obj['mask_format']](obj)
    path = obj['seg_map_path']
    if path not in raw:
        raw[path] = read_raw_mask(path)
    return decode_mask(raw[path], obj['mask_format'], obj.get('instance_id'))


@TRANSFORMS.register_module()
class LoadImageWithPixelLimit(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that checks the image's size before
    decoding it.

    The width and height are read from the file's header; an image of more
    than ``max_pixels`` pixels, an empty file or one no reader knows is
    refused with an :class:`~samref.utils.ImageFileError` (a ``ValueError``)
    that names the file, before a decoder allocates anything: a small
    compressed file can declare gigabytes of pixels. Everything else is
    mmcv's transform (``color_type``, ``imdecode_backend``,
    ``backend_args``, ``ignore_empty``, ``to_float32``).

    Args:
        max_pixels (int): The most pixels an image may have. Defaults to
            :data:`~samref.utils.MAX_IMAGE_PIXELS` (2**26, e.g. 8192 x
            8192).
        **kwargs: As for ``LoadImageFromFile``.
    """

    def __init__(self, max_pixels: int = MAX_IMAGE_PIXELS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict | None: With ``img``, ``img_shape`` and ``ori_shape``;
            None for an unreadable file when ``ignore_empty``.
        """
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                content = fileio.FileClient.infer_client(
                    self.file_client_args, filename).get(filename)
            else:
                content = fileio.get(filename, backend_args=self.backend_args)
            img = decode_image(
                content,
                filename,
                self.max_pixels,
                flag=self.color_type,
                backend=self.imdecode_backend)
        except Exception:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, max_pixels={self.max_pixels})'


@TRANSFORMS.register_module()
class LoadObjectMasks(BaseTransform):
    """Read and decode the masks of all objects of an image.

    Required keys: ``objects`` (from an ``InteractiveSegDataset``),
    ``img_path`` and ``ori_shape`` (from ``LoadImageWithPixelLimit``).

    Added keys: ``gt_object_masks``, a ``K x H x W`` int8 array with 1 for
    the object, 0 for background and -1 for ignored pixels, at the original
    image size (interactive metrics are computed there).

    A file shared by several objects (an instance map) is read once.
    Objects of an annotation format (COCO / LVIS) are decoded from their
    own ``segmentation``.
    """

    def transform(self, results: dict) -> dict:
        """Load the object masks.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``results`` with ``gt_object_masks``.

        Raises:
            MaskFileError: A mask cannot be read or decoded, its size
                differs from the image's or it has no object pixel; the
                message names the file (and the annotation).
        """
        if not results['objects']:
            raise MaskFileError(f'image {results["img_path"]} has no object')
        height, width = results['ori_shape'][:2]
        raw: Dict[str, np.ndarray] = {}
        masks = []
        for obj in results['objects']:
            mask = load_object_mask(obj, raw)
            if mask.shape != (height, width):
                raise MaskFileError(
                    f'{object_name(obj)} is {mask.shape[1]}x'
                    f'{mask.shape[0]} but image {results["img_path"]} '
                    f'is {width}x{height}')
            if not (mask == 1).any():
                raise MaskFileError(
                    f'{object_name(obj)} has no object pixel' +
                    (f' for instance {obj["instance_id"]}' if obj.
                     get('instance_id') is not None else ''))
            masks.append(mask)
        results['gt_object_masks'] = np.stack(masks)
        return results
