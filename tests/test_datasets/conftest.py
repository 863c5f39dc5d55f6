# Copyright (c) samref contributors. All rights reserved.
"""Fixtures of the dataset tests: tiny layouts written into ``tmp_path``.

Helpers are handed out as fixtures (``layout``, ``build``, ``check_packed``)
so that test modules need not import this file, which would be ambiguous
next to ``tests/conftest.py``.
"""
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.io import loadmat, savemat

import samref  # noqa: F401 - registers the datasets and transforms

# The tiny images are 12 wide and 9 high unless a test says otherwise, and
# of one colour (BGR).
IMG_HW = (9, 12)
IMG_BGR = (16, 128, 240)

PIPELINE = [
    dict(type='LoadImageWithPixelLimit'),
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
              bgr: Sequence[int] = IMG_BGR) -> Path:
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


@pytest.fixture
def warnings_log():
    """Records of WARNING and above sent to the current mmengine logger
    (where ``print_log(..., logger='current')`` writes)."""
    records = []

    class Collect(logging.Handler):

        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def rect(x0: int, y0: int, x1: int, y1: int) -> list:
    """A rectangle polygon; pycocotools fills rows y0..y1-1, columns
    x0..x1-1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def rect_mask(hw: Tuple[int, int], *boxes) -> np.ndarray:
    """The int8 mask of rectangles ``(x0, y0, x1, y1)``, drawn by hand."""
    mask = np.zeros(hw, np.int8)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = 1
    return mask


def coco_image(img_id: int, folder: str, hw: Tuple[int, int]) -> dict:
    name = f'{img_id:012d}.jpg'
    return dict(
        id=img_id,
        file_name=name,
        coco_url=f'http://images.cocodataset.org/{folder}/{name}',
        height=hw[0],
        width=hw[1])


@pytest.fixture
def coco_lvis(layout) -> SimpleNamespace:
    """A tiny COCO 2017 + LVIS v1 layout below ``layout.root``:
    ``coco/annotations/instances_train2017.json``,
    ``lvis/lvis_v1_train.json``, ``coco/train2017`` and ``coco/val2017``.

    COCO: image 1 has object 101, a crowd annotation (102) and a polygon
    with 2 points (103, dropped); image 2 has a compressed RLE (104), a
    good and a zero-area polygon (105, kept with the good one), an
    uncompressed RLE (107) and two polygons (108); image 4 only a crowd
    annotation (106). LVIS: image 1 has 201 (inside 101: dropped by the
    overlap filter), 202 (disjoint) and 206 (exactly half in 101: kept);
    image 3 (val2017) has 203 and 205 (inside 203: dropped); image 4 has
    the L-shaped 204.

    Returns ``root`` (the COCO data root), ``coco_file``, ``lvis_file``,
    ``img_paths`` and ``hw`` by image id, ``masks`` (hand-drawn int8 masks
    by annotation id) and ``lvis_rel`` (``lvis_ann_file`` relative to
    ``root``).
    """
    hw = {1: (20, 30), 2: (24, 16), 3: (18, 18), 4: (20, 30)}
    folders = {1: 'train2017', 2: 'train2017', 3: 'val2017', 4: 'train2017'}
    img_paths = {}
    for img_id, size in hw.items():
        # A dark left and a bright right half, to see flips.
        img = np.full((*size, 3), 40, np.uint8)
        img[:, size[1] // 2:] = 220
        path = layout.path(f'coco/{folders[img_id]}/{img_id:012d}.jpg')
        cv2.imwrite(str(path), img)
        img_paths[img_id] = path

    masks = {
        101: rect_mask(hw[1], (2, 3, 10, 9)),
        104: rect_mask(hw[2], (3, 2, 12, 6), (0, 10, 1, 11)),
        105: rect_mask(hw[2], (1, 14, 6, 20)),
        107: rect_mask(hw[2], (0, 5, 1, 10)),
        108: rect_mask(hw[2], (10, 14, 14, 18), (10, 20, 15, 23)),
        201: rect_mask(hw[1], (3, 4, 9, 8)),
        202: rect_mask(hw[1], (20, 10, 28, 18)),
        206: rect_mask(hw[1], (8, 3, 12, 9)),
        203: rect_mask(hw[3], (2, 2, 12, 12)),
        205: rect_mask(hw[3], (4, 4, 10, 10)),
        204: rect_mask(hw[4], (2, 2, 8, 4), (2, 4, 4, 8)),
    }
    rle_104 = mask_utils.encode(np.asfortranarray(masks[104], np.uint8))
    rle_104['counts'] = rle_104['counts'].decode()  # as stored in json
    crowd = mask_utils.encode(
        np.asfortranarray(rect_mask(hw[1], (0, 0, 4, 4)), np.uint8))
    crowd['counts'] = crowd['counts'].decode()

    def ann(ann_id, img_id, segmentation, **extra):
        return dict(
            id=ann_id,
            image_id=img_id,
            category_id=1,
            segmentation=segmentation,
            area=1.0,
            bbox=[0, 0, 1, 1],
            **extra)

    coco = dict(
        images=[coco_image(i, folders[i], hw[i]) for i in (1, 2, 4)],
        annotations=[
            ann(101, 1, [rect(2, 3, 10, 9)], iscrowd=0),
            ann(102, 1, crowd, iscrowd=1),
            ann(103, 1, [[1, 1, 5, 5]], iscrowd=0),
            ann(104, 2, rle_104, iscrowd=0),
            ann(105, 2, [rect(1, 14, 6, 20), [0, 0, 5, 5, 10, 10]], iscrowd=0),
            ann(106, 4, crowd, iscrowd=1),
            ann(107,
                2,
                dict(counts=[5, 5, 24 * 16 - 10], size=[24, 16]),
                iscrowd=0),
            ann(108,
                2, [rect(10, 14, 14, 18),
                    rect(10, 20, 15, 23)],
                iscrowd=0),
        ],
        categories=[dict(id=1, name='thing')])
    lvis = dict(
        images=[
            dict(
                id=i,
                coco_url=coco_image(i, folders[i], hw[i])['coco_url'],
                height=hw[i][0],
                width=hw[i][1],
                neg_category_ids=[],
                not_exhaustive_category_ids=[]) for i in (1, 3, 4)
        ],
        annotations=[
            ann(201, 1, [rect(3, 4, 9, 8)]),
            ann(202, 1, [rect(20, 10, 28, 18)]),
            ann(206, 1, [rect(8, 3, 12, 9)]),
            ann(203, 3, [rect(2, 2, 12, 12)]),
            ann(205, 3, [rect(4, 4, 10, 10)]),
            ann(204, 4, [[2, 2, 8, 2, 8, 4, 4, 4, 4, 8, 2, 8]]),
        ],
        categories=[dict(id=1, name='thing', frequency='f')])
    coco_file = layout.path('coco/annotations/instances_train2017.json')
    coco_file.write_text(json.dumps(coco))
    lvis_file = layout.path('lvis/lvis_v1_train.json')
    lvis_file.write_text(json.dumps(lvis))
    return SimpleNamespace(
        root=layout.root / 'coco',
        coco_file=coco_file,
        lvis_file=lvis_file,
        lvis_rel='../lvis/lvis_v1_train.json',
        img_paths=img_paths,
        hw=hw,
        masks=masks)
