# Copyright (c) samref contributors. All rights reserved.
"""Image files read within a pixel limit checked before decoding.

A compressed image can declare far more pixels than its size suggests (a
440 KB PNG of 20000 x 20000 pixels decodes to 1.2 GB), so the size is read
from the file's header (PIL reads headers only) and checked against a
limit before a decoder allocates anything; only formats of
:data:`IMAGE_FORMATS` are read. Every problem, an empty file, a
format no reader knows, a header bomb, a failed decode, is an
:class:`ImageFileError` that names the file.
"""
import io
import os.path as osp
import re
import warnings
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from PIL import Image

# The most pixels an image may have: 2**26, e.g. 8192 x 8192 (a 201 MB
# RGB array); the largest benchmark images (HQSeg-44K) have about 24
# million.
MAX_IMAGE_PIXELS = 1 << 26
# The formats read (PIL's names). Each starts with a signature that PIL and
# OpenCV both recognise, so the size PIL reads from the header is the size
# OpenCV decodes: a file cannot show PIL one format and OpenCV another.
IMAGE_FORMATS = ('PNG', 'JPEG', 'BMP', 'TIFF', 'WEBP', 'PPM')


class ImageFileError(ValueError):
    """An image file that is empty, not an image, too large or corrupt."""


def read_image_size(
        source: Union[str, bytes],
        name: Optional[str] = None,
        max_pixels: int = MAX_IMAGE_PIXELS,
        formats: Optional[Sequence[str]] = None) -> Tuple[int, int]:
    """Read an image's size from its header and check it.

    Args:
        source (str | bytes): The file, or its content.
        name (str, optional): How messages name the image; the path when
            ``source`` is one.
        max_pixels (int): The most pixels allowed. Defaults to
            :data:`MAX_IMAGE_PIXELS`.
        formats (Sequence[str], optional): PIL format names allowed (e.g.
            ``('PNG', 'JPEG')``); no other reader of PIL looks at the file.
            None allows any PIL identifies.

    Returns:
        tuple[int, int]: Width and height.

    Raises:
        ImageFileError: The file is empty, no image PIL can identify, of a
            format not allowed, or has more than ``max_pixels`` pixels.
    """
    name = name or (source if isinstance(source, str) else 'the image')
    if (osp.getsize(source) if isinstance(source, str) else len(source)) \
            == 0:
        raise ImageFileError(f'image {name} is an empty file')
    try:
        with warnings.catch_warnings():
            # Images between PIL's own limit and twice it are refused below
            # by ours; PIL warns about them on opening.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            opened = Image.open(
                source if isinstance(source, str) else io.BytesIO(source),
                formats=formats)
            with opened as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        # PIL refuses more than twice its own limit before we see the size.
        declared = re.search(r'\((\d+) pixels\)', str(error))
        raise ImageFileError(
            f'image {name} declares '
            f'{declared[1] if declared else "more"} pixels, more than the '
            f'limit of {max_pixels} pixels (max_pixels)') from None
    except Exception as error:  # noqa: BLE001 - any reader failure, named
        kind = 'image' if formats is None else f'{", ".join(formats)} image'
        raise ImageFileError(
            f'cannot read image {name}: no readable {kind} header '
            f'({type(error).__name__}: {error})') from None
    if width * height > max_pixels:
        raise ImageFileError(
            f'image {name} is {width} x {height} pixels, more than the '
            f'limit of {max_pixels} pixels (max_pixels)')
    return width, height


def decode_image(content: bytes,
                 name: str,
                 max_pixels: int = MAX_IMAGE_PIXELS,
                 flag: str = 'color',
                 channel_order: str = 'bgr',
                 backend: Optional[str] = None) -> np.ndarray:
    """Decode an image's bytes after checking its header.

    Args:
        content (bytes): The file's content.
        name (str): How messages name the image (its path).
        max_pixels (int): See :func:`read_image_size`.
        flag (str): As for ``mmcv.imfrombytes``. Defaults to ``'color'``.
        channel_order (str): ``'bgr'`` or ``'rgb'``. Defaults to ``'bgr'``.
        backend (str, optional): As for ``mmcv.imfrombytes``.

    Returns:
        np.ndarray: The image.

    Raises:
        ImageFileError: See :func:`read_image_size` (with the formats of
            :data:`IMAGE_FORMATS`); or decoding failed.
    """
    read_image_size(content, name, max_pixels, IMAGE_FORMATS)
    try:
        image = mmcv.imfrombytes(
            content, flag=flag, channel_order=channel_order, backend=backend)
    except Exception as error:  # noqa: BLE001 - any decoder failure, named
        raise ImageFileError(f'cannot decode image {name}: '
                             f'{type(error).__name__}: {error}') from None
    if image is None:
        raise ImageFileError(f'cannot decode image {name}')
    return image


def read_image(path: str,
               max_pixels: int = MAX_IMAGE_PIXELS,
               flag: str = 'color',
               channel_order: str = 'bgr',
               backend: Optional[str] = None) -> np.ndarray:
    """Read an image file within the pixel limit.

    Args:
        path (str): The file.
        max_pixels (int): See :func:`read_image_size`.
        flag (str): As for ``mmcv.imfrombytes``. Defaults to ``'color'``.
        channel_order (str): ``'bgr'`` or ``'rgb'``. Defaults to ``'bgr'``.
        backend (str, optional): As for ``mmcv.imfrombytes``.

    Returns:
        np.ndarray: The image.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageFileError: See :func:`decode_image`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    with open(path, 'rb') as f:
        content = f.read()
    return decode_image(content, path, max_pixels, flag, channel_order,
                        backend)


def check_image_array(image: np.ndarray, max_pixels: int,
                      input_size: int) -> Tuple[int, int]:
    """Check an image given as an array before a model encodes it.

    Args:
        image (np.ndarray): The image, ``H x W x 3`` uint8.
        max_pixels (int): The largest ``H * W`` accepted.
        input_size (int): The model's input side, to which the longer side
            is resized.

    Returns:
        tuple[int, int]: ``(h, w)`` of the image resized to the input
        size (the longer side ``input_size``, rounded as SAM rounds).

    Raises:
        ValueError: The image is not ``H x W x 3`` uint8, has more than
            ``max_pixels`` pixels, or is too narrow to resize.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or \
            image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('image must be an H x W x 3 uint8 array, got '
                         f'{getattr(image, "shape", type(image).__name__)} of '
                         f'{getattr(image, "dtype", "no dtype")}')
    height, width = image.shape[:2]
    if height * width > max_pixels:
        raise ValueError(f'image of {height} x {width} pixels is larger than '
                         f'the limit of {max_pixels} pixels (max_pixels)')
    scale = input_size / max(height, width, 1)
    resized = (int(height * scale + 0.5), int(width * scale + 0.5))
    if min(height, width, *resized) < 1:
        raise ValueError(
            f'image of {height} x {width} pixels cannot be segmented: '
            f'resized to the model input size {input_size} it would be '
            f'{resized[0]} x {resized[1]} pixels')
    return resized
