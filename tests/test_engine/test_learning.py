# Copyright (c) samref contributors. All rights reserved.
"""The demo's recipes learn: trained briefly on a few generated pictures,
SAM's masks follow the clicks (stage 1), and SAM-REF's refiners, trained on
that SAM (stage 2), improve its masks.

Stage 1 (200 iterations, about 65 s with two threads, 95 s in one of
``make test``'s one-thread workers while the other runs the rest of the
suite) runs with the suite; stage 2 adds 250 iterations (about 90 s with
two threads) and is marked slow."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import RUNNERS

from samref.apis import InteractivePredictor
from samref.datasets import make_shapes_dataset
from samref.evaluation import padded_distance
from testing_utils import CONFIG_DIR, NO_VALIDATION

STAGE1 = CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'
STAGE2 = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'
ITERS = 200
STAGE2_ITERS = 250
# How far inside a missed part the second click has to be, in pixels.
MIN_PART_DEPTH = 5


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

    The second click is only made where the first mask missed a part one
    can click into, at least :data:`MIN_PART_DEPTH` pixels from the part's
    border; a sliver along the object's outline is no part to add.

    Returns:
        np.ndarray: ``num_objects x 3``: first IoU, second IoU (the first
        without a second click) and coverage (NaN without a second click).
    """
    predictor = InteractivePredictor(model.eval())
    results, image = [], None
    for name in sorted(os.listdir(osp.join(root, 'gt'))):
        stem = osp.splitext(name)[0]
        gt = cv2.imread(osp.join(root, 'gt', name), cv2.IMREAD_GRAYSCALE) > 0
        # The objects of a picture come one after another, each with a copy
        # of the picture: it is encoded once.
        previous, image = image, cv2.imread(
            osp.join(root, 'img', stem + '.jpg'))
        if previous is None or not np.array_equal(previous, image):
            predictor.set_image(image)
        clicks = [deepest(gt)]
        first = predictor.predict(clicks, [1])
        missed = gt & ~first.mask
        if padded_distance(missed).max() < MIN_PART_DEPTH:
            results.append((iou(first.mask, gt), ) * 2 + (np.nan, ))
            continue
        clicks.append(deepest(missed))
        second = predictor.predict(clicks, [1, 1], first)
        _, parts = cv2.connectedComponents(missed.astype(np.uint8))
        part = parts == parts[clicks[1][1], clicks[1][0]]
        results.append((iou(first.mask, gt), iou(second.mask, gt),
                        float((second.mask & part).sum() / part.sum())))
    return np.array(results)


def demo_runner(config, root: str, iters: int, work_dir: str, load_from=None):
    """A runner of a demo config, shortened to ``iters`` on ``root``, on
    clicks only: with the demo's quarter of samples starting with a box,
    200 iterations leave the first-click masks empty (mean IoU 0.02)."""
    cfg = Config.fromfile(str(config))
    warmup = cfg.param_scheduler[0]['end']
    cfg.merge_from_dict({
        'model.train_cfg.click_sampler.box_prob': 0.0,
        'train_dataloader.dataset.data_root': root,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': iters,
        'param_scheduler.1.begin': warmup,
        'param_scheduler.1.end': iters,
        'default_hooks.checkpoint.interval': iters,
        'work_dir': work_dir,
        'load_from': load_from,
        'log_level': 'WARNING',
        **NO_VALIDATION,
    })
    return RUNNERS.build(cfg)


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    root = make_shapes_dataset(
        str(tmp_path_factory.mktemp('shapes')), 16, seed=11)
    work_dir = str(tmp_path_factory.mktemp('work'))
    runner = demo_runner(STAGE1, root, ITERS, work_dir)
    runner.model.init_weights()
    before = interactions(runner.model, root)
    runner.train()
    return dict(
        root=root,
        checkpoint=osp.join(work_dir, f'iter_{ITERS}.pth'),
        before=before,
        after=interactions(runner.model, root))


@pytest.fixture(scope='module')
def trained(stage1):
    return stage1['before'], stage1['after']


def test_first_click_masks_find_the_object(trained):
    before, after = trained
    assert before[:, 0].mean() < 0.1, before[:, 0]
    assert after[:, 0].mean() > before[:, 0].mean() + 0.2, after[:, 0]


def test_a_positive_click_on_a_missed_part_adds_it(trained):
    _, after = trained
    # Enough objects have a missed part (a SAM that covers everything, as
    # the untrained one does, has none) ...
    clicked = ~np.isnan(after[:, 2])
    assert clicked.sum() >= 10, after
    # ... a good share of the clicked part is taken in (a SAM that ignores
    # the second click takes in nothing; measured 0.44 here, and 0.31 to
    # 0.47 with the runner's seed set to 1, 2 or 3) ...
    assert np.nanmean(after[:, 2]) > 0.2, after
    # ... and the IoU rises with it.
    assert after[clicked, 1].mean() > after[clicked, 0].mean(), after


@pytest.mark.slow
def test_refiners_improve_the_masks_of_the_sam_they_refine(stage1, tmp_path):
    # The refiners read the picture at full resolution: trained briefly on
    # the SAM above, they take its masks closer to the objects (measured:
    # first click 0.490 -> 0.528, second 0.534 -> 0.585; 0.532 and 0.578
    # with the runner's seed 1. After 150 iterations GlobalDiff's two blocks
    # had gained only 0.8 and 1.7 points at the first click, three blocks
    # 3.2. Refiners that kept SAM's masks would gain nothing, and with the
    # refiners' BatchNorm tested on running averages the second click was
    # no better than SAM's).
    runner = demo_runner(STAGE2, stage1['root'], STAGE2_ITERS, str(tmp_path),
                         stage1['checkpoint'])
    runner.train()
    sam, refined = stage1['after'], interactions(runner.model, stage1['root'])
    assert refined[:, 0].mean() > sam[:, 0].mean() + 0.01, refined[:, 0]
    assert refined[:, 1].mean() > sam[:, 1].mean() + 0.01, refined[:, 1]
