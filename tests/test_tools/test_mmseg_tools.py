# Copyright (c) samref contributors. All rights reserved.
"""mmseg's own tools on our configs and datasets (their logic, as mmseg's
tools/analysis_tools/browse_dataset.py runs it)."""
import cv2
import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, VISUALIZERS

from samref.datasets import make_shapes_dataset
from testing_utils import CONFIG_DIR


def test_browse_dataset_draws_the_training_targets(tmp_path):
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 2, seed=6)
    cfg = Config.fromfile(str(CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'))
    cfg.train_dataloader.dataset.data_root = shapes
    cfg.visualizer.name = 'browse_visualizer'
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    np.random.seed(0)  # the photometric distortion's draws
    item = dataset[0]
    # browse_dataset.py passes this view as it is; mmseg's visualizer then
    # draws its labels on a copy with the view's strides, which OpenCV 5
    # refuses whatever the dataset (mmseg's own too), so contiguous here.
    image = np.ascontiguousarray(item['inputs'].permute(1, 2,
                                                        0).numpy()[...,
                                                                   [2, 1, 0]])
    sample = item['data_samples'].numpy()
    out_file = str(tmp_path / 'browse' / 'first.png')
    visualizer.add_datasample(
        name='first',
        image=image,
        data_sample=sample,
        draw_gt=True,
        draw_pred=False,
        show=False,
        out_file=out_file)
    drawn = cv2.imread(out_file)[..., ::-1]
    assert drawn.shape == image.shape
    # The object is drawn in its class colour (red), the background in its
    # own (black): red minus blue rises on the object only.
    target = sample.gt_sem_seg.data[0]

    def redness(rgb):
        return rgb[..., 0].astype(float) - rgb[..., 2].astype(float)

    gain = redness(drawn) - redness(image)
    assert gain[target == 1].mean() > 60
    # The background is only darkened (black at the overlay's opacity):
    # its redness moves towards 0 (but where the label's text is written).
    background = redness(image)[target == 0]
    darkened = np.abs(redness(drawn)[target == 0]) <= np.abs(background) + 2
    assert darkened.mean() > 0.99
