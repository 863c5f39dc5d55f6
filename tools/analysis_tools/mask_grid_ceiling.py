# Copyright (c) samref contributors. All rights reserved.
"""The best mIoU a mask decided on an N x N grid can reach on a dataset.

SAM predicts low-resolution logits (4x the token grid: 256 x 256 for a
1024 input) and upsamples them bilinearly. A model that has only learned
where the object is token by token, not where its border runs inside a
token, scores at most what a perfect token-grid mask scores. This tool
measures that ceiling: every object of the config's test set, resized into
the padded input frame, is averaged over the cells of an N x N grid, the
cell averages minus 0.5 are taken as logits and brought back to the
original size exactly as the segmentors do, and the IoU is taken against
the ground truth::

    python tools/analysis_tools/mask_grid_ceiling.py \\
        configs/demo/sam_tiny_256_stage1.py --grids 16 32 64
"""
import argparse
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from terminaltables import AsciiTable

from samref.evaluation import mask_iou
from samref.models.segmentors import logits_to_original


def grid_ceiling_iou(gt: np.ndarray, img_shape: Tuple[int, int],
                     input_size: int, grid: int) -> float:
    """IoU of the best ``grid x grid`` mask of one object.

    Args:
        gt (np.ndarray): ``H x W`` 1 / 0 / -1 mask at the original size.
        img_shape (tuple[int, int]): ``(h, w)`` of the resized, unpadded
            input.
        input_size (int): Side of the padded, square input.
        grid (int): Cells per side; must divide ``input_size``.

    Returns:
        float: The IoU after the segmentors' upsampling.
    """
    if input_size % grid:
        raise ValueError(f'grid {grid} does not divide the input size '
                         f'{input_size}')
    h, w = img_shape
    obj = cv2.resize(
        (gt == 1).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    padded = np.zeros((input_size, input_size), np.float32)
    padded[:h, :w] = obj
    cells = padded.reshape(grid, input_size // grid, grid,
                           input_size // grid).mean(axis=(1, 3))
    logits = logits_to_original(
        torch.from_numpy(cells - 0.5)[None, None], input_size, img_shape,
        gt.shape)
    return mask_iou(gt, logits[0, 0].numpy() > 0)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config whose test set is measured')
    parser.add_argument(
        '--grids',
        type=int,
        nargs='+',
        default=[16, 32, 64],
        help='cells per side (16: the tokens of a 256 input with patch '
        '16; 64: its low-resolution logits)')
    parser.add_argument(
        '--thresholds',
        type=float,
        nargs='+',
        default=[0.85, 0.9],
        help='report the share of objects reaching these IoUs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. '
        'test_dataloader.dataset.data_root=data/GrabCut')
    return parser.parse_args(argv)


def measure(dataset, grids: Sequence[int]) -> np.ndarray:
    """Ceiling IoUs of every object of ``dataset``.

    Args:
        dataset: A dataset whose pipeline packs ``gt_object_masks`` and
            ``img_shape`` (the interactive test pipelines).
        grids (Sequence[int]): Cells per side.

    Returns:
        np.ndarray: ``num_objects x len(grids)`` IoUs.
    """
    rows = []
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        img_shape = tuple(sample.metainfo['img_shape'][:2])
        input_size = max(img_shape)
        for gt in sample.gt_object_masks.numpy():
            rows.append([
                grid_ceiling_iou(gt, img_shape, input_size, grid)
                for grid in grids
            ])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(grids))


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Measure the ceilings and print their table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    ious = measure(dataset, args.grids)
    if not len(ious):
        raise SystemExit(f'the test set of {args.config} has no object')
    rows = [['grid', 'mIoU'] + [f'IoU >= {t:g}' for t in args.thresholds]]
    for column, grid in enumerate(args.grids):
        column_ious = ious[:, column]
        rows.append(
            [f'{grid} x {grid}', f'{100 * column_ious.mean():.2f}'] +
            [f'{np.mean(column_ious >= t):.0%}' for t in args.thresholds])
    print(f'{args.config}: {len(ious)} objects')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
