# Copyright (c) samref contributors. All rights reserved.
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config

from malicious_files import ATTACKS
from samref.apis import InteractivePredictor, init_model
from testing_utils import CONFIG_DIR


def test_init_model_accepts_config_objects_and_overrides():
    cfg = Config.fromfile(str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'))
    model = init_model(cfg, cfg_options={'model.mask_output': 'best_iou'})
    assert model.mask_output == 'best_iou'
    assert not model.training
    with pytest.raises(TypeError, match='config'):
        init_model(42)


def test_init_model_sets_up_host_memory_as_the_runner(monkeypatch):
    import samref.utils.host_memory as host_memory
    calls = []
    monkeypatch.setattr(host_memory, 'set_malloc_thresholds',
                        lambda **kwargs: calls.append(kwargs) or True)
    config = str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
    init_model(config)
    expected = dict(mmap_threshold=2**31 - 1, trim_threshold=-1)
    assert Config.fromfile(config).env_cfg.malloc_cfg == expected
    assert calls == [expected]
    init_model(config, cfg_options={'env_cfg.malloc_cfg': None})
    assert len(calls) == 1
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r'env_cfg\.malloc_cfg'):
        init_model(config, cfg_options={'env_cfg.malloc_cfg.top_pad': 0})


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
    assert out.mask.shape == (8, 12)
    limited = InteractivePredictor(tiny_sam, max_pixels=8 * 12 - 1)
    with pytest.raises(
            ValueError,
            match='8 x 12 pixels is larger than the '
            'limit of 95 pixels'):
        limited.set_image(np.zeros((8, 12, 3), np.uint8))
    assert limited.image_features is None


@pytest.fixture(scope='module')
def tiny_sam_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = init_model(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
    state_dict = model.state_dict()
    path = tmp_path_factory.mktemp('weights') / 'tiny_sam.pth'
    torch.save(state_dict, path)
    return path, state_dict


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_init_model_refuses_code_carrying_checkpoint(tmp_path,
                                                     tiny_sam_weights, attack):
    _, state_dict = tiny_sam_weights
    marker = tmp_path / 'code_ran'
    path = ATTACKS[attack](tmp_path / 'carrier.pth', marker, state_dict)
    with pytest.raises(pickle.UnpicklingError, match='carrier.pth'):
        init_model(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py', str(path))
    assert not marker.exists()


def test_init_model_refuses_checkpoints_that_do_not_fit(
        tmp_path, tiny_sam_weights):
    _, state_dict = tiny_sam_weights
    config = CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': torch.nn.Conv2d(3, 8, 3).state_dict()}, other)
    with pytest.raises(
            RuntimeError,
            match='other.pth does not fit SAM.*'
            'image_encoder.*mask_decoder'):
        init_model(config, str(other))
    wrong = tmp_path / 'wrong_shapes.pth'
    torch.save({k: v[None] for k, v in state_dict.items()}, wrong)
    with pytest.raises(RuntimeError, match='0% of its weights.*shape'):
        init_model(config, str(wrong))
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(tiny_sam_weights[0].read_bytes()[:100000])
    with pytest.raises(RuntimeError, match='cut.pth.*truncated'):
        init_model(config, str(cut))


def test_samref_starts_from_a_sam_checkpoint(tmp_path):
    """SAM-REF's refiners are new, SAM's weights load; strict refuses."""
    torch.manual_seed(0)
    sam = init_model(CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py')
    path = tmp_path / 'stage1.pth'
    torch.save(sam.state_dict(), path)
    config = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'
    model = init_model(config, str(path))
    torch.testing.assert_close(model.mask_decoder.state_dict(),
                               sam.mask_decoder.state_dict())
    with pytest.raises(RuntimeError, match='new.*global_refiner'):
        init_model(config, str(path), strict=True)


@pytest.fixture
def predictor(tiny_sam):
    predictor = InteractivePredictor(tiny_sam)
    predictor.set_image(np.zeros((8, 12, 3), np.uint8))
    return predictor


@pytest.mark.parametrize('points, labels, message', [
    ([(float('nan'), 3)], [1], 'click 0 has non-finite'),
    ([(2, 3), (4, float('inf'))], [1, 0], 'click 1 has non-finite'),
    ([(2, 3)], [2], 'click 0 has label 2'),
    ([(2, 3), (4, 4)], [1, 7], 'click 1 has label 7'),
    ([(2, 3)], [0.5], 'label 0.5'),
    ([(500, 3)], [1], r'click 0 .* outside the 12 x 8'),
    ([(2, -1)], [1], 'outside'),
    ([(2, 9)], [1], 'outside'),
    ([(2, 3, 4)], [1], r'shape \(1, 3\)'),
    ([], [], 'N >= 1'),
    ([('a', 'b')], [1], 'points must be numbers'),
    ([(2, 3)], ['1'], 'labels must be numbers'),
])
def test_predictor_refuses_bad_clicks(predictor, points, labels, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(points, labels)


def test_predictor_accepts_clicks_on_the_border(predictor):
    out = predictor.predict([(0, 0), (12, 8)], [True, 0])
    assert out.mask.shape == (8, 12)
    assert np.isfinite(out.interaction.logits.numpy()).all()


@pytest.mark.parametrize('shape', [(1, 3000), (3000, 1), (0, 5)])
def test_predictor_refuses_images_too_narrow_to_resize(tiny_sam, shape):
    predictor = InteractivePredictor(tiny_sam)
    with pytest.raises(ValueError, match=f'{shape[0]} x {shape[1]} pixels'):
        predictor.set_image(np.zeros(shape + (3, ), np.uint8))


def test_predictor_segments_a_thin_image(tiny_sam):
    predictor = InteractivePredictor(tiny_sam)
    predictor.set_image(np.zeros((1, 500, 3), np.uint8))  # 1 x N resizes
    assert predictor.predict([(250, 0.5)], [1]).mask.shape == (1, 500)
