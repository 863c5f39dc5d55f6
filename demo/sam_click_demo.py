# Copyright (c) samref contributors. All rights reserved.
"""Click on a picture with an interactive segmentor and save the overlay.

By default it runs SAM with a tiny random-weight image encoder on a picture
the script draws itself, so it needs no download::

    python demo/sam_click_demo.py

With the official weights (download ``sam_vit_b_01ec64.pth`` from the
segment-anything release page) and your own image::

    python demo/sam_click_demo.py --config configs/sam/sam_vit-b.py \\
        --checkpoint checkpoints/sam_vit_b_01ec64.pth --image my.jpg \\
        --clicks 320,240,1 100,60,0
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Tuple

import cv2
import mmcv
import numpy as np

from samref.apis import InteractivePredictor, init_model
from samref.datasets import draw_ring_with_bar
from samref.utils import read_image
from samref.visualization import (draw_interaction, draw_panel_grid,
                                  pick_mask_color)

Click = Tuple[float, float, int]


def draw_scene(height: int = 480,
               width: int = 640,
               seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Draw a textured picture with one object, a ring with a thin bar
    (:func:`samref.datasets.draw_ring_with_bar`).

    Args:
        height (int): Picture height. Defaults to 480.
        width (int): Picture width. Defaults to 640.
        seed (int): Seed of the object's position and the texture noise.
            Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: The BGR uint8 picture and the object's
        bool mask.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    picture = np.stack([
        90 + 60 * cols / width, 110 + 40 * rows / height,
        np.full((height, width), 150.0)
    ], -1)
    obj = draw_ring_with_bar((height, width), seed)
    picture[obj] = (40, 70, 200)
    picture += rng.normal(0, 12, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8), obj


def scripted_clicks(mask: np.ndarray) -> List[Click]:
    """Three clicks: inside the object, in its hole, on its thin bar
    outside the ring.

    Args:
        mask (np.ndarray): The object's bool mask.

    Returns:
        list[tuple[float, float, int]]: ``(x, y, label)`` clicks.
    """
    mask = mask.astype(np.uint8)
    _, labels = cv2.connectedComponents(1 - mask)
    outside = np.unique(
        np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    hole = (mask == 0) & ~np.isin(labels, outside)
    # Zero padding: the picture's border is the regions' border too.
    clicks = []
    for region, label in ((mask, 1), (hole, 0)):
        dist = cv2.distanceTransform(
            np.pad(region.astype(np.uint8), 1), cv2.DIST_L2,
            cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(dist), dist.shape)
        clicks.append((float(x), float(y), label))
    # The bar: what an opening removes, away from the ring and its hole.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    ring = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    bar = mask & (1 - cv2.dilate(ring | hole.astype(np.uint8), kernel))
    ys, xs = np.nonzero(bar)
    middle = len(ys) // 2
    clicks.append((float(xs[middle]), float(ys[middle]), 1))
    return clicks


def parse_click(text: str) -> Click:
    """Parse an ``x,y,label`` command-line click."""
    parts = text.split(',')
    if len(parts) != 3 or parts[2] not in ('0', '1'):
        raise argparse.ArgumentTypeError(
            f'a click is x,y,label with label 0 or 1, got {text!r}')
    try:
        return float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a click is x,y,label with numbers, got {text!r}') from None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default='configs/sam/sam_vit-tiny.py',
        help='model config (default: SAM with a tiny random encoder)')
    parser.add_argument(
        '--checkpoint', help='weights, e.g. an official SAM checkpoint')
    parser.add_argument(
        '--image', help='picture to segment (default: a generated one)')
    parser.add_argument(
        '--clicks',
        nargs='+',
        type=parse_click,
        help='clicks as x,y,label (default: scripted on the generated '
        'picture)')
    parser.add_argument(
        '--out',
        default='work_dirs/demo/sam_clicks.png',
        help='where to write the overlay PNG')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Run the demo.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        str: Path of the written overlay.
    """
    args = parse_args(argv)
    truth = None
    if args.image is None:
        image, truth = draw_scene()
        clicks = args.clicks or scripted_clicks(truth)
    else:
        image = read_image(args.image)
        if not args.clicks:
            raise SystemExit('--clicks is required with --image')
        clicks = args.clicks
    if args.checkpoint is None:
        print('NOTE: no --checkpoint given, so the weights are RANDOM and the '
              'masks mean nothing. For real masks download '
              'sam_vit_b_01ec64.pth and run: python demo/sam_click_demo.py '
              '--config configs/sam/sam_vit-b.py --checkpoint '
              'checkpoints/sam_vit_b_01ec64.pth')
    model = init_model(args.config, args.checkpoint, device=args.device)
    predictor = InteractivePredictor(model)
    predictor.set_image(image)
    print(f'image {image.shape[1]}x{image.shape[0]} encoded in '
          f'{predictor.encode_time:.2f} s')
    rgb = mmcv.bgr2rgb(image)
    mask_color = pick_mask_color(rgb, truth)
    session = predictor.new_session()
    panels = []
    for k, (x, y, positive) in enumerate(clicks, start=1):
        result = session.add_click(x, y, bool(positive))
        mask = result.mask
        line = (f'click {k} {"+" if positive else "-"} at '
                f'({x:.0f}, {y:.0f}): {mask.mean():6.1%} of the picture, '
                f'{result.click_time * 1e3:.0f} ms')
        title = f'click {k}'
        if truth is not None:
            union = np.logical_or(mask, truth).sum()
            iou = np.logical_and(mask, truth).sum() / max(union, 1)
            line += f', IoU {iou:.3f}'
            title += f'  IoU {iou:.3f}'
        print(line)
        panels.append(
            draw_interaction(
                rgb, mask, clicks[:k], caption=title, mask_color=mask_color))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if not mmcv.imwrite(mmcv.rgb2bgr(draw_panel_grid([panels])), args.out):
        raise OSError(f'cannot write {args.out}')
    print(f'overlay written to {args.out}')
    return args.out


if __name__ == '__main__':
    main()
