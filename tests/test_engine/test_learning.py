# Copyright (c) samref contributors. All rights reserved.
"""The demo's stage-1 recipe learns: trained briefly on a few generated
pictures, SAM's masks follow the clicks."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

from samref.apis import InteractivePredictor
from samref.datasets import make_shapes_dataset
from samref.evaluation import padded_distance
from testing_utils import CONFIG_DIR, NO_VALIDATION

STAGE1 = CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'
ITERS = 300


def deepest(region: np.ndarray) -> tuple:
    """``(x, y)`` of the pixel of ``region`` farthest from its border."""
    dist = padded_distance(region)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def iou(mask: np.ndarray, gt: np.ndarray) -> float:
    return float((mask & gt).sum() / max((mask | gt).sum(), 1))


def interactions(model, root: str) -> np.ndarray:
    """IoU after a first click at the object's centre and after a second,
    positive click at the deepest pixel the first mask missed, and the
    share of that missed part (the connected region of missed object
    pixels the second click lies in) which the second mask covers.

    Returns:
        np.ndarray: ``num_objects x 3``: first IoU, second IoU, coverage.
    """
    predictor = InteractivePredictor(model.eval())
    results = []
    for name in sorted(os.listdir(osp.join(root, 'gt'))):
        stem = osp.splitext(name)[0]
        gt = cv2.imread(osp.join(root, 'gt', name), cv2.IMREAD_GRAYSCALE) > 0
        predictor.set_image(cv2.imread(osp.join(root, 'img', stem + '.jpg')))
        clicks = [deepest(gt)]
        first = predictor.predict(clicks, [1])
        missed = gt & ~first['mask']
        if not missed.any():
            results.append((iou(first['mask'], gt), ) * 2 + (1.0, ))
            continue
        clicks.append(deepest(missed))
        second = predictor.predict(clicks, [1, 1], first)
        _, parts = cv2.connectedComponents(missed.astype(np.uint8))
        part = parts == parts[clicks[1][1], clicks[1][0]]
        results.append((iou(first['mask'], gt), iou(second['mask'], gt),
                        float((second['mask'] & part).sum() / part.sum())))
    return np.array(results)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = make_shapes_dataset(
        str(tmp_path_factory.mktemp('shapes')), 16, seed=11)
    cfg = Config.fromfile(str(STAGE1))
    warmup = cfg.param_scheduler[0]['end']
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': root,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': ITERS,
        'param_scheduler.1.begin': warmup,
        'param_scheduler.1.end': ITERS,
        'default_hooks.checkpoint.interval': ITERS,
        'work_dir': str(tmp_path_factory.mktemp('work')),
        'load_from': None,
        'log_level': 'WARNING',
        **NO_VALIDATION,
    })
    runner = RUNNERS.build(cfg)
    runner.model.init_weights()
    before = interactions(runner.model, root)
    runner.train()
    return before, interactions(runner.model, root)


def test_first_click_masks_find_the_object(trained):
    before, after = trained
    assert before[:, 0].mean() < 0.1, before[:, 0]
    assert after[:, 0].mean() > before[:, 0].mean() + 0.2, after[:, 0]


def test_a_positive_click_on_a_missed_part_adds_it(trained):
    before, after = trained
    # The clicked missed part is taken in (untrained: next to nothing) ...
    assert after[:, 2].mean() > before[:, 2].mean() + 0.2, after[:, 2]
    # ... and the IoU rises with it.
    assert after[:, 1].mean() > after[:, 0].mean(), after[:, :2]
