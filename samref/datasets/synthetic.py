# Copyright (c) samref contributors. All rights reserved.
"""A generated dataset of objects with thin structures, holes and fine
boundaries: where fusing the image with the clicks again (SAM-REF's
refiners) matters most. Deterministic for a seed.

Solid blobs (with a jagged outline) and holed ellipses make up about two
thirds of the objects: a SAM trained from random weights on two CPU cores
learns to find and follow the clicked object on them; the trees, wheels and
frames (lines 3-8 pixels wide) are where its masks stay coarse and
refinement pays. Wheels and frames are drawn a tenth of the time each: at
15 % each, the demo's SAM stayed under 48 % mIoU after five clicks whatever
its recipe (docs/en/notes/demo_recipe.md)."""
import json
import os
import os.path as osp
from typing import Optional, Tuple

import cv2
import numpy as np

SHAPES = ('blob', 'holes', 'wheel', 'tree', 'frame')
# How often each kind is drawn.
SHAPE_WEIGHTS = (0.35, 0.3, 0.1, 0.15, 0.1)
# An object's radius, as a share of the picture's shorter side.
RADIUS_RANGE = (0.14, 0.3)
# How many objects a picture holds (the upper end excluded).
OBJECT_COUNT_RANGE = (3, 6)
# (h, w) of a picture of make_shapes_dataset.
PICTURE_SIZE = (240, 320)


def _line(mask: np.ndarray, p0, p1, width: int) -> None:
    cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1,
             max(1, int(width)), cv2.LINE_AA)


def draw_shape(kind: str, size: Tuple[int, int],
               rng: np.random.Generator) -> np.ndarray:
    """Draw one object's mask.

    Args:
        kind (str): One of :data:`SHAPES`.
        size (tuple[int, int]): ``(h, w)`` of the picture.
        rng (np.random.Generator): Randomness of placement and proportions.

    Returns:
        np.ndarray: ``h x w`` uint8 mask (0/1).
    """
    height, width = size
    mask = np.zeros(size, np.uint8)
    scale = min(height, width)
    cx = rng.uniform(0.25, 0.75) * width
    cy = rng.uniform(0.25, 0.75) * height
    radius = rng.uniform(*RADIUS_RANGE) * scale
    thin = max(1, round(scale / rng.uniform(30, 80)))
    if kind == 'blob':
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(6, 12)))
        radii = radius * rng.uniform(0.55, 1.0, len(angles))
        corners = np.stack(
            [cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [corners.astype(np.int32)], 1, cv2.LINE_AA)
    elif kind == 'wheel':
        cv2.circle(mask, (int(cx), int(cy)), int(radius), 1, thin * 2)
        cv2.circle(mask, (int(cx), int(cy)), int(radius * 0.15), 1, -1)
        for angle in rng.uniform(0, 2 * np.pi) + np.arange(rng.integers(
                5, 9)) * 2 * np.pi / rng.integers(5, 9):
            _line(mask, (cx, cy),
                  (cx + radius * np.cos(angle), cy + radius * np.sin(angle)),
                  thin)
    elif kind == 'tree':
        stack = [(cx, cy + radius, -np.pi / 2, radius * 0.7, thin * 3)]
        while stack:
            x, y, angle, length, w = stack.pop()
            x1, y1 = x + length * np.cos(angle), y + length * np.sin(angle)
            _line(mask, (x, y), (x1, y1), w)
            if length > radius * 0.15:
                for turn in (-1, 1):
                    stack.append(
                        (x1, y1, angle + turn * rng.uniform(0.3, 0.8),
                         length * rng.uniform(0.55, 0.75), max(1, w - 1)))
    elif kind == 'frame':
        half_w, half_h = radius, radius * rng.uniform(0.6, 1.0)
        corners = np.array([[cx - half_w, cy - half_h],
                            [cx + half_w, cy + half_h]]).astype(int)
        cv2.rectangle(mask, tuple(corners[0]), tuple(corners[1]), 1, thin * 2)
        for t in rng.uniform(0.2, 0.8, rng.integers(1, 4)):
            _line(mask, (cx - half_w + 2 * half_w * t, cy - half_h),
                  (cx - half_w + 2 * half_w * t, cy + half_h), thin)
    elif kind == 'holes':
        cv2.ellipse(mask, (int(cx), int(cy)),
                    (int(radius), int(radius * rng.uniform(0.6, 1.0))),
                    rng.uniform(0, 180), 0, 360, 1, -1)
        for _ in range(rng.integers(3, 8)):
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.6)
            cv2.circle(mask, (int(cx + dist * radius * np.cos(angle)),
                              int(cy + dist * radius * np.sin(angle))),
                       int(radius * rng.uniform(0.05, 0.15)), 0, -1)
    else:
        raise KeyError(f'unknown shape {kind!r}; choose from {SHAPES}')
    return mask


def draw_ring_with_bar(size: Tuple[int, int],
                       seed: int = 0,
                       extent: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """One object with a hole and a thin part: an elliptic ring and a thin
    bar from its centre out past its rim, towards the bottom right.

    The benchmarks click on it (:func:`samref.apis.synthetic_object`), and
    ``demo/sam_click_demo.py`` draws its picture around it.

    Args:
        size (tuple[int, int]): ``(h, w)`` of the mask.
        seed (int): Seed of the ring's position. Defaults to 0.
        extent (tuple[int, int], optional): ``(h, w)`` of the area at the
            top left the ring is placed in (e.g. the resized image inside
            a padded input); nothing is drawn outside it. The whole mask
            when None.

    Returns:
        np.ndarray: ``h x w`` bool mask.
    """
    rng = np.random.default_rng(seed)
    height, width = extent or size
    rows, cols = np.mgrid[0:size[0], 0:size[1]].astype(float)
    rows, cols = rows / height, cols / width
    cy, cx = 0.5 + 0.1 * rng.uniform(-1, 1, 2)
    ring = ((rows - cy) / 0.3)**2 + ((cols - cx) / 0.22)**2
    obj = (ring < 1) & (ring > 0.25)
    obj |= (np.abs(rows - cols) < 0.01) & (cols > cx)
    return obj & (rows < 1) & (cols < 1)


def draw_sample(size: Tuple[int, int],
                rng: np.random.Generator,
                min_visible: float = 0.6,
                min_area: int = 300) -> Tuple[np.ndarray, np.ndarray]:
    """A textured picture with several overlapping objects.

    The objects are drawn one over the other, each in a colour that stands
    out from the background. Every object that stays mostly visible is an
    annotated instance; the others remain in the picture as unannotated
    distractors. So the same picture holds several targets, and only the
    click tells which one is meant.

    Args:
        size (tuple[int, int]): ``(h, w)``.
        rng (np.random.Generator): Randomness.
        min_visible (float): Smallest visible share of an object's pixels
            for it to be annotated. Defaults to 0.6.
        min_area (int): Smallest visible area of an annotated object, in
            pixels. Defaults to 300.

    Returns:
        tuple[np.ndarray, np.ndarray]: BGR uint8 picture and the ``h x w``
        uint8 instance map (0 background and distractors, ``1 .. K`` the
        annotated objects, ``K >= 1``).
    """
    height, width = size
    base = rng.uniform(40, 215, 3)
    rows, cols = np.mgrid[0:height, 0:width]
    tilt = rng.uniform(-40, 40, 3)
    picture = base + tilt * (cols / width)[..., None]
    owner = np.zeros(size, np.int32)  # which object is on top, 1-based
    areas = []
    for index in range(1, rng.integers(*OBJECT_COUNT_RANGE) + 1):
        shape = draw_shape(rng.choice(SHAPES, p=SHAPE_WEIGHTS), size, rng)
        colour = base + rng.choice([-1, 1], 3) * rng.uniform(45, 90, 3)
        picture[shape > 0] = np.clip(colour, 0, 255)
        owner[shape > 0] = index
        areas.append(int(shape.sum()))
    instances = np.zeros(size, np.uint8)
    for index, area in enumerate(areas, start=1):
        visible = int((owner == index).sum())
        if visible >= max(min_area, min_visible * area):
            instances[owner == index] = instances.max() + 1
    if not instances.any():  # the top object is always whole
        instances[owner == owner.max()] = 1
    picture += rng.normal(0, 10, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8), instances


def make_shapes_dataset(root: str,
                        num_images: int,
                        seed: int = 0,
                        size: Tuple[int, int] = PICTURE_SIZE) -> str:
    """Write the dataset in the COCO-MVal layout (``img/``, ``gt/``).

    Each annotated object of a generated picture is one image/mask pair
    ``<picture>_<k>``, so a picture with three objects is evaluated (and
    trained on) three times, once per object.
    An existing folder made with the same settings is reused.

    Args:
        root (str): Output folder.
        num_images (int): Generated pictures (each with one or more
            objects).
        seed (int): Seed. Defaults to 0.
        size (tuple[int, int]): ``(h, w)`` of the pictures. Defaults to
            :data:`PICTURE_SIZE`.

    Returns:
        str: ``root``.
    """
    settings = dict(
        version=4, num_images=num_images, seed=seed, size=list(size))
    manifest = osp.join(root, 'settings.json')
    if osp.isfile(manifest):
        with open(manifest, encoding='utf-8') as f:
            if json.load(f) == settings:
                return root
    for folder in ('img', 'gt'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
        for name in os.listdir(osp.join(root, folder)):
            os.remove(osp.join(root, folder, name))
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        picture, instances = draw_sample(size, rng)
        for k in range(1, int(instances.max()) + 1):
            stem = f'{i:05d}_{k}'
            cv2.imwrite(
                osp.join(root, 'img', f'{stem}.jpg'), picture,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(
                osp.join(root, 'gt', f'{stem}.png'),
                (instances == k).astype(np.uint8) * 255)
    with open(manifest, 'w', encoding='utf-8') as f:
        json.dump(settings, f)
    return root
