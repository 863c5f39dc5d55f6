# Copyright (c) samref contributors. All rights reserved.
"""Decoding of the benchmarks' mask files into object / background / ignore.

Every decoder returns an ``int8`` map with 1 for the object, 0 for
background and -1 for pixels to ignore (excluded from IoU and from click
simulation).

Two kinds of mask formats exist: those of :data:`MASK_DECODERS` decode a
mask file that the object names (``seg_map_path``), read once per image;
those of :data:`ANNOTATION_DECODERS` decode an annotation that the object
carries itself (COCO / LVIS polygons and RLE), and ``seg_map_path`` names
the annotation file only for messages.
"""
from typing import Callable, Dict, Optional, Union

import numpy as np
from pycocotools import mask as mask_utils
from scipy.io import loadmat

from ..utils.image_files import ImageFileError, read_image

OBJECT, BACKGROUND, IGNORE = 1, 0, -1


class MaskFileError(ValueError):
    """A mask file that cannot be read or does not fit its image."""


def read_mask_file(path: str) -> np.ndarray:
    """Read a mask image (any bit depth) as an ``H x W`` array.

    Its size is checked from its header first (see
    :func:`samref.utils.read_image`).

    Args:
        path (str): The file.

    Returns:
        np.ndarray: The first channel of the file, unchanged values.

    Raises:
        MaskFileError: The file is missing, too large or cannot be decoded.
    """
    try:
        mask = read_image(path, flag='unchanged', backend='pillow')
    except (OSError, ImageFileError) as error:
        raise MaskFileError(f'cannot read mask file {path}: {error}') from None
    return mask[..., 0] if mask.ndim == 3 else mask


def read_sbd_instances(path: str) -> np.ndarray:
    """Read ``GTinst.Segmentation`` of an SBD ``inst/*.mat`` file.

    Args:
        path (str): The ``.mat`` file.

    Returns:
        np.ndarray: ``H x W`` instance ids, 0 for background.

    Raises:
        MaskFileError: The file is missing, unreadable or has no
            ``GTinst.Segmentation``.
    """
    try:
        content = loadmat(path)
        return np.asarray(
            content['GTinst']['Segmentation'][0, 0], dtype=np.int32)
    except Exception as error:  # noqa: BLE001 - names the file below
        raise MaskFileError(f'cannot read SBD instances from {path}: '
                            f'{type(error).__name__}: {error}') from None


def decode_grabcut(mask: np.ndarray, instance_id: Optional[int]) -> np.ndarray:
    """GrabCut / Berkeley (RITM layout): 128 is ignore, > 128 is object."""
    out = np.where(mask > 128, OBJECT, BACKGROUND).astype(np.int8)
    out[mask == 128] = IGNORE
    return out


def decode_nonzero(mask: np.ndarray, instance_id: Optional[int]) -> np.ndarray:
    """DAVIS, COCO-MVal: any value above 0 is object."""
    return (mask > 0).astype(np.int8)


def decode_grey(mask: np.ndarray, instance_id: Optional[int]) -> np.ndarray:
    """HQSeg-44K: 0..255 grey masks, values above 127 are object."""
    return (mask > 127).astype(np.int8)


def decode_sbd_instance(mask: np.ndarray,
                        instance_id: Optional[int]) -> np.ndarray:
    """SBD instance maps: the object is ``instance_id``; nothing is
    ignored."""
    if instance_id is None:
        raise ValueError('instance maps need an instance_id')
    return (mask == instance_id).astype(np.int8)


def decode_voc_instance(mask: np.ndarray,
                        instance_id: Optional[int]) -> np.ndarray:
    """PASCAL VOC ``SegmentationObject``: the object is ``instance_id``, 255
    (the boundary band) is ignore."""
    out = decode_sbd_instance(mask, instance_id)
    out[mask == 255] = IGNORE
    return out


def decode_focuscut(mask: np.ndarray,
                    instance_id: Optional[int]) -> np.ndarray:
    """FocusCut layout: 1 is object, 255 is ignore."""
    out = (mask == 1).astype(np.int8)
    out[mask == 255] = IGNORE
    return out


MASK_DECODERS: Dict[str, Callable[[np.ndarray, Optional[int]], np.ndarray]] = {
    'grabcut': decode_grabcut,
    'nonzero': decode_nonzero,
    'grey': decode_grey,
    'sbd_instance': decode_sbd_instance,
    'voc_instance': decode_voc_instance,
    'focuscut': decode_focuscut,
}


def decode_coco_segmentation(segmentation: Union[list, dict], height: int,
                             width: int) -> np.ndarray:
    """Decode a COCO / LVIS ``segmentation`` with pycocotools.

    Args:
        segmentation (list | dict): Polygons (a list of flat
            ``[x1, y1, x2, y2, ...]`` lists, merged into one mask),
            uncompressed RLE (``counts`` a list) or compressed RLE
            (``counts`` a string), as in the annotation file.
        height (int): Image height, for polygons.
        width (int): Image width, for polygons.

    Returns:
        np.ndarray: ``H x W`` int8 map, 1 for the object and 0 for
        background; RLE gives its own ``size``.

    Raises:
        ValueError: Polygons with fewer than 3 points or an odd number of
            coordinates, which pycocotools would read as a box or decode to
            nothing.
    """
    if isinstance(segmentation, list):
        if not segmentation or any(
                len(poly) < 6 or len(poly) % 2 for poly in segmentation):
            raise ValueError('polygons need 3 points or more, as x, y pairs')
        rle = mask_utils.merge(
            mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation['counts'], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.int8)


def decode_coco_object(obj: dict) -> np.ndarray:
    """Decode the annotation of an object of ``COCOLVISDataset``.

    Args:
        obj (dict): The object, with ``segmentation``, ``height`` and
            ``width`` (of its image in the annotation file), ``ann_id`` and
            ``seg_map_path`` (the annotation file).

    Returns:
        np.ndarray: ``H x W`` int8 map, 1 for the object and 0 for
        background.

    Raises:
        MaskFileError: pycocotools cannot decode the annotation; the
            message names the annotation file and id.
    """
    segmentation, height, width = (obj['segmentation'], obj['height'],
                                   obj['width'])
    try:
        return decode_coco_segmentation(segmentation, height, width)
    except Exception as error:  # noqa: BLE001 - names the annotation below
        raise MaskFileError(
            f'cannot decode annotation {obj["ann_id"]} of '
            f'{obj["seg_map_path"]}: {type(error).__name__}: {error}'
        ) from None


ANNOTATION_DECODERS: Dict[str, Callable[[dict], np.ndarray]] = {
    'coco': decode_coco_object,
}


def check_mask_format(mask_format: str) -> str:
    """Return ``mask_format`` or raise a ``KeyError`` listing the known ones.
    """
    if mask_format not in MASK_DECODERS and \
            mask_format not in ANNOTATION_DECODERS:
        raise KeyError(
            f'unknown mask format {mask_format!r}; choose from '
            f'{sorted(MASK_DECODERS) + sorted(ANNOTATION_DECODERS)}')
    return mask_format


def read_raw_mask(path: str) -> np.ndarray:
    """Read a mask file as stored: ``.mat`` files as SBD instance maps,
    anything else as an image.

    Args:
        path (str): The file.

    Returns:
        np.ndarray: ``H x W`` raw values.
    """
    return read_sbd_instances(path) if path.lower().endswith('.mat') else \
        read_mask_file(path)


def decode_mask(raw: np.ndarray,
                mask_format: str,
                instance_id: Optional[int] = None) -> np.ndarray:
    """Decode a raw mask into one object's 1 / 0 / -1 map.

    Args:
        raw (np.ndarray): Raw values, see :func:`read_raw_mask`.
        mask_format (str): A key of :data:`MASK_DECODERS`.
        instance_id (int, optional): The object's id in instance maps.

    Returns:
        np.ndarray: ``H x W`` int8 map.
    """
    return MASK_DECODERS[check_mask_format(mask_format)](raw, instance_id)
