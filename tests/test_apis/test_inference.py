# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest
from mmengine.config import Config

from samref.apis import InteractivePredictor, init_model
from testing_utils import CONFIG_DIR


def test_init_model_accepts_config_objects_and_overrides():
    cfg = Config.fromfile(str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'))
    model = init_model(cfg, cfg_options={'model.mask_output': 'best_iou'})
    assert model.mask_output == 'best_iou'
    assert not model.training
    with pytest.raises(TypeError, match='config'):
        init_model(42)


def test_predictor_rejects_bad_input(tiny_sam):
    predictor = InteractivePredictor(tiny_sam)
    with pytest.raises(RuntimeError, match='set_image'):
        predictor.predict([(1, 1)], [1])
    with pytest.raises(ValueError, match='uint8'):
        predictor.set_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='channel_order'):
        predictor.set_image(np.zeros((8, 8, 3), np.uint8), 'hsv')
    predictor.set_image(np.zeros((8, 12, 3), np.uint8))
    assert predictor.metainfo['img_shape'] == (683, 1024)
    with pytest.raises(ValueError, match='one label per click'):
        predictor.predict([(1, 1), (2, 2)], [1])
    out = predictor.predict([(11, 7)], [0])
    assert out['mask'].shape == (8, 12)
