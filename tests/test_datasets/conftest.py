# Copyright (c) samref contributors. All rights reserved.
"""Fixtures of the dataset tests: tiny layouts written into ``tmp_path``.

Helpers are handed out as fixtures (``layout``, ``build``, ``check_packed``)
so that test modules need not import this file, which would be ambiguous
next to ``tests/conftest.py``.
"""
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image
from scipy.io import loadmat, savemat

import samref  # noqa: F401 - registers the datasets and transforms

# The tiny images are 12 wide and 9 high unless a test says otherwise.
IMG_HW = (9, 12)

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadObjectMasks'),
    dict(
        type='Resize',
        scale=(1024, 1024),
        keep_ratio=True,
        backend='pillow',
        interpolation='bilinear'),
    dict(type='PackInteractiveInputs'),
]


def voc_palette() -> list:
    """The PASCAL VOC colour map, flattened for ``Image.putpalette``."""
    palette = []
    for index in range(256):
        r = g = b = 0
        cid = index
        for shift in range(7, -1, -1):
            r |= ((cid >> 0) & 1) << shift
            g |= ((cid >> 1) & 1) << shift
            b |= ((cid >> 2) & 1) << shift
            cid >>= 3
        palette += [r, g, b]
    return palette


class Layout:
    """Writes the files of a tiny dataset below ``root``.

    Args:
        root (Path): The folder that plays ``data_root``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        """``root / rel`` with its parent folders created."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def image(self,
              rel: str,
              hw: Tuple[int, int] = IMG_HW,
              bgr: Sequence[int] = (16, 128, 240)) -> Path:
        """A solid-colour image written with OpenCV (format by suffix)."""
        path = self.path(rel)
        img = np.empty((*hw, 3), np.uint8)
        img[...] = np.asarray(bgr, np.uint8)
        # OpenCV picks the encoder by the lower-case suffix.
        ok, buf = cv2.imencode(path.suffix.lower(), img)
        assert ok, path
        path.write_bytes(buf.tobytes())
        return path

    def mask(self, rel: str, values: np.ndarray) -> Path:
        """A grey (``L``) mask with exactly ``values``, written with PIL."""
        path = self.path(rel)
        Image.fromarray(np.asarray(values, np.uint8)).save(path)
        return path

    def palette_mask(self, rel: str, ids: np.ndarray) -> Path:
        """A ``P`` mode PNG whose palette indices are ``ids`` (VOC style)."""
        path = self.path(rel)
        img = Image.fromarray(np.asarray(ids, np.uint8))
        img.putpalette(voc_palette())
        img.save(path)
        with Image.open(path) as check:
            assert check.mode == 'P'
            np.testing.assert_array_equal(np.array(check), ids)
        return path

    def sbd_mat(self, rel: str, ids: np.ndarray) -> Path:
        """An SBD ``inst/*.mat`` file: struct ``GTinst`` with
        ``Segmentation`` (uint8 ids) and ``Categories``."""
        path = self.path(rel)
        ids = np.asarray(ids, np.uint8)
        n = max(int((np.unique(ids) > 0).sum()), 1)
        savemat(
            str(path), {
                'GTinst': {
                    'Segmentation': ids,
                    'Categories': np.full((n, 1), 15, np.uint8),
                }
            })
        seg = loadmat(str(path))['GTinst']['Segmentation'][0, 0]
        np.testing.assert_array_equal(seg, ids)
        return path

    def text(self, rel: str, lines: Sequence[str]) -> Path:
        """A list file such as ``val.txt``."""
        path = self.path(rel)
        path.write_text(''.join(f'{line}\n' for line in lines))
        return path

    def garbage(self, rel: str) -> Path:
        """A file whose bytes are no image and no MATLAB file."""
        path = self.path(rel)
        path.write_bytes(b'this is not an image \x00\x01\x02' * 8)
        return path


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build registered names in the mmseg scope, as the configs do."""
    init_default_scope('mmseg')


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path)


@pytest.fixture
def pipeline() -> list:
    return [dict(t) for t in PIPELINE]


@pytest.fixture
def build(pipeline) -> Callable:
    """``build(type, data_root, **kwargs)`` builds a dataset from the
    registry with the evaluation pipeline."""

    def _build(type: str, data_root, **kwargs):
        cfg = dict(type=type, data_root=str(data_root), pipeline=pipeline)
        cfg.update(kwargs)
        return DATASETS.build(cfg)

    return _build


def expected_img_shape(hw: Tuple[int, int]) -> Tuple[int, int]:
    """Size after resizing the long side to 1024, by hand."""
    h, w = hw
    scale = 1024 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


@pytest.fixture
def check_packed() -> Callable:
    """``check_packed(out, masks, hw, bgr=None)`` checks one packed item.

    ``masks`` is the expected ``K x H x W`` array of 1 / 0 / -1 at the
    original size ``hw``; ``inputs`` must be the image resized so that its
    long side is 1024.
    """

    def _check(out: dict,
               masks: np.ndarray,
               hw: Tuple[int, int] = IMG_HW,
               bgr: Optional[Sequence[int]] = None):
        assert set(out) == {'inputs', 'data_samples'}
        inputs, sample = out['inputs'], out['data_samples']
        new_hw = expected_img_shape(hw)
        assert max(new_hw) == 1024
        assert tuple(inputs.shape) == (3, *new_hw)
        assert str(inputs.dtype) == 'torch.uint8'
        if bgr is not None:
            # JPEG may shift a solid colour by a few levels, no more.
            centre = inputs[:, new_hw[0] // 2, new_hw[1] // 2].numpy()
            np.testing.assert_allclose(centre, bgr, atol=4)
        gt = sample.gt_object_masks
        assert str(gt.dtype) == 'torch.int8'
        masks = np.asarray(masks, np.int8)
        assert tuple(gt.shape) == masks.shape
        assert tuple(gt.shape[1:]) == tuple(hw)
        np.testing.assert_array_equal(gt.numpy(), masks)
        meta = sample.metainfo
        assert tuple(meta['ori_shape']) == tuple(hw)
        assert tuple(meta['img_shape']) == new_hw
        w_scale, h_scale = meta['scale_factor']
        assert w_scale == pytest.approx(new_hw[1] / hw[1])
        assert h_scale == pytest.approx(new_hw[0] / hw[0])
        return sample

    return _check
