# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam

from samref.apis import InteractivePredictor, init_model
from samref.models import SAM, SAMImageEncoder
from testing_utils import CONFIG_DIR, build_from_config

OFFICIAL = {
    'b': ('vit_b', 'sam_vit_b_01ec64.pth'),
    'l': ('vit_l', 'sam_vit_l_0b3195.pth'),
    'h': ('vit_h', 'sam_vit_h_4b8939.pth'),
}


def reference_predictor(model: SAM) -> SamPredictor:
    """segment_anything's own predictor around the same modules."""
    sam = Sam(model.image_encoder, model.prompt_encoder,
              model.mask_decoder).eval()
    return SamPredictor(sam)


@pytest.fixture
def picture():
    # Odd, non-square size: resize rounding and padding both matter.
    return np.random.default_rng(0).integers(
        0, 256, (301, 457, 3), dtype=np.uint8)


@pytest.mark.parametrize('mask_output', ['single', 'best_iou'])
def test_matches_sam_predictor(tiny_sam, picture, mask_output):
    tiny_sam.mask_output = mask_output
    multimask = mask_output == 'best_iou'
    reference = reference_predictor(tiny_sam)
    reference.set_image(picture)
    ours = InteractivePredictor(tiny_sam)
    ours.set_image(picture, channel_order='rgb')
    torch.testing.assert_close(
        ours.image_features['image_embeddings'],
        reference.features,
        atol=1e-5,
        rtol=0)

    def reference_click(points, labels, mask_input):
        masks, ious, low_res = reference.predict(
            np.array(points),
            np.array(labels),
            mask_input=mask_input,
            multimask_output=multimask,
            return_logits=True)
        best = int(np.argmax(ious))
        return masks[best] > 0, low_res[best:best + 1]

    clicks = [((220.5, 140.0), 1), ((60.0, 250.0), 0)]
    prev_ours, prev_ref = None, None
    for k in (1, 2):  # the first click, then one with the logits fed back
        points = [c[0] for c in clicks[:k]]
        labels = [c[1] for c in clicks[:k]]
        ref_mask, ref_low = reference_click(points, labels, prev_ref)
        out = ours.predict(points, labels, prev_ours)
        assert out.interaction.logits.shape == (1, 1, 256, 256)
        low = out.interaction.logits[0].numpy()
        assert np.abs(low - ref_low).max() <= 1e-4
        assert out.mask.shape == picture.shape[:2]
        np.testing.assert_array_equal(out.mask, ref_mask)
        prev_ours, prev_ref = out, ref_low


def test_forward_predict_scales_clicks_like_predictor(tiny_sam, picture):
    predictor = InteractivePredictor(tiny_sam)
    predictor.set_image(picture, channel_order='rgb')
    expected = predictor.predict([(100.0, 50.0)], [1])
    packed = predictor.pipeline(
        dict(img=np.ascontiguousarray(picture[..., ::-1])))
    sample = packed['data_samples']
    sample.clicks = InstanceData(
        points=torch.tensor([[100.0, 50.0]]), labels=torch.tensor([1]))
    data = tiny_sam.data_preprocessor(
        dict(inputs=[packed['inputs']], data_samples=[sample]), False)
    with torch.no_grad():
        logits = tiny_sam(**data, mode='tensor')
        results = tiny_sam(**data, mode='predict')
    torch.testing.assert_close(logits, expected.interaction.logits)
    assert isinstance(results[0], SegDataSample)
    np.testing.assert_array_equal(results[0].pred_sem_seg.data[0].numpy(),
                                  expected.mask.astype(np.int64))


def test_forward_without_clicks_is_a_clear_error(tiny_sam):
    with pytest.raises(ValueError, match='clicks'):
        tiny_sam(torch.zeros(1, 3, 1024, 1024), [SegDataSample()])


def test_official_vit_b_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(0)
    official = sam_model_registry['vit_b']()
    path = tmp_path / OFFICIAL['b'][1]
    torch.save(official.state_dict(), path)
    model = init_model(
        CONFIG_DIR / 'sam' / 'sam_vit-b.py', str(path), strict=True)
    ours = model.state_dict()
    for key, value in official.state_dict().items():
        assert torch.equal(ours[key], value), key
    assert set(ours) == set(official.state_dict())


def test_tiny_checkpoint_round_trips_strictly(tiny_sam, tmp_path):
    path = tmp_path / 'tiny.pth'
    torch.save(tiny_sam.state_dict(), path)
    other = init_model(
        CONFIG_DIR / 'sam' / 'sam_vit-tiny.py', str(path), strict=True)
    for key, value in tiny_sam.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


@pytest.mark.parametrize('size', ['l', 'h'])
def test_official_key_names_and_shapes_match(size):
    # Built on the meta device: the full state-dict layout of ViT-L/H with
    # no memory; the slow test below loads real files.
    with torch.device('meta'):
        official = sam_model_registry[OFFICIAL[size][0]]()
        ours = build_from_config(f'sam/sam_vit-{size}.py')
    expected = {k: v.shape for k, v in official.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected


@pytest.mark.slow
@pytest.mark.parametrize('size', ['l', 'h'])
def test_official_large_checkpoints_load_strictly(size, tmp_path):
    official = sam_model_registry[OFFICIAL[size][0]]()
    path = tmp_path / OFFICIAL[size][1]
    torch.save(official.state_dict(), path)
    del official
    init_model(
        CONFIG_DIR / 'sam' / f'sam_vit-{size}.py', str(path), strict=True)


def test_wrong_size_checkpoint_fails_strict_loading(tiny_sam, tmp_path):
    path = tmp_path / 'tiny.pth'
    torch.save(tiny_sam.state_dict(), path)
    model = build_from_config('sam/sam_vit-b.py')
    with pytest.raises(RuntimeError, match='size mismatch'):
        load_checkpoint(model, str(path), strict=True)


def test_encoder_arch_presets():
    assert SAMImageEncoder.arch_settings['huge']['depth'] == 32
    encoder = SAMImageEncoder(
        arch=dict(embed_dim=32, depth=1, num_heads=1, global_attn_indexes=[0]),
        img_size=64)
    assert encoder(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 4, 4)
    with pytest.raises(KeyError, match='gigantic'):
        SAMImageEncoder(arch='gigantic')
    with pytest.raises(KeyError, match='num_heads'):
        SAMImageEncoder(arch=dict(embed_dim=8, depth=1))


def test_unknown_mask_output_is_rejected():
    with pytest.raises(ValueError, match='mask_output'):
        build_from_config('sam/sam_vit-tiny.py', model=dict(mask_output='x'))


def test_encoder_loss_trains_the_image_encoder_only():
    torch.manual_seed(0)
    model = build_from_config('demo/sam_tiny_256_stage1.py').train()
    gt = torch.zeros(1, 256, 256, dtype=torch.long)
    gt[:, 60:160, 80:200] = 1
    gt[:, 240:] = 255  # padding
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    sample.gt_sem_seg = PixelData(data=gt)
    losses = model.loss(torch.randn(1, 3, 256, 256), [sample])
    assert {'loss_nfl', 'loss_dice', 'loss_prototype'} <= set(losses)
    losses['loss_prototype'].backward()
    grads = {
        name: param.grad
        for name, param in model.named_parameters() if param.requires_grad
    }
    assert all(grads[name] is not None for name in grads
               if name.startswith('image_encoder.'))
    assert all(grads[name] is None for name in grads
               if name.startswith('mask_decoder.'))


def three_rectangles() -> list:
    """Three 256 x 256 training samples, a 160 x 80 rectangle each."""
    samples = []
    for left in (20, 90, 150):
        sample = SegDataSample(metainfo=dict(click_gamma=0.9))
        gt = torch.zeros(1, 256, 256, dtype=torch.long)
        gt[:, 40:200, left:left + 80] = 1
        sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return samples


def test_training_step_simulates_in_eval_mode_switching_once(monkeypatch):
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_from_config('demo/sam_tiny_256_stage1.py').train()
    samples = three_rectangles()
    modes, switches = [], []
    interact, train = model.interact, model.train

    def record(*args, **kwargs):
        modes.append((torch.is_grad_enabled(), model.mask_decoder.training))
        return interact(*args, **kwargs)

    def count(mode=True):
        switches.append(mode)
        return train(mode)

    monkeypatch.setattr(model, 'interact', record)
    monkeypatch.setattr(model, 'train', count)
    monkeypatch.setattr(model.click_sampler, 'num_extra_clicks', lambda g: 2)
    model.loss(torch.randn(3, 3, 256, 256), samples)
    # Two simulated clicks per sample without gradient in eval mode, then
    # one interaction per sample with gradient in training mode ...
    assert modes == [(False, False)] * 6 + [(True, True)] * 3
    # ... and one switch to eval mode and back for the whole batch.
    assert switches == [False, True]
    assert model.training and not model.prompt_encoder.training


@pytest.mark.parametrize('box_alone_loss', [False, True])
def test_box_alone_loss_supervises_the_box_before_the_clicks(
        monkeypatch, box_alone_loss):
    torch.manual_seed(0)
    model = build_from_config(
        'demo/sam_tiny_256_stage1.py',
        model=dict(train_cfg=dict(box_alone_loss=box_alone_loss))).train()
    samples = three_rectangles()
    # A box sample with two extra clicks, a click sample with two and a box
    # sample drawn without extra clicks (its last interaction is the box's).
    starts = iter([True, False, True])
    extra = iter([2, 2, 0])
    monkeypatch.setattr(model.click_sampler, 'starts_with_box',
                        lambda: next(starts))
    monkeypatch.setattr(model.click_sampler, 'num_extra_clicks',
                        lambda gamma: next(extra))
    supervised, interact = [], model.interact

    def record(features, points, labels, previous=None, boxes=None):
        if torch.is_grad_enabled():
            supervised.append((points.shape[1], previous is not None, boxes
                               is not None))
        return interact(features, points, labels, previous, boxes)

    monkeypatch.setattr(model, 'interact', record)
    losses = model.loss(torch.randn(3, 3, 256, 256), samples)
    last = [(2, True, True), (3, True, False), (0, False, True)]
    box_alone = [(0, False, True)]
    assert supervised == (
        last[:1] + box_alone + last[1:] if box_alone_loss else last)
    # The box alone is one more term of the same loss items.
    assert {'loss_nfl', 'loss_dice'} <= set(losses)
    assert float(losses['clicks']) == pytest.approx(5 / 3)


def test_encoder_loss_needs_an_encoder_that_trains():
    with pytest.raises(ValueError, match='frozen_modules'):
        build_from_config(
            'demo/sam_tiny_256_stage1.py',
            model=dict(frozen_modules=('image_encoder', 'prompt_encoder')))
    model = build_from_config('demo/sam_tiny_256_stage1.py').train()
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    sample.gt_sem_seg = PixelData(data=torch.ones(1, 256, 256).long())
    sample.image_embeddings = torch.zeros(256, 16, 16)
    with pytest.raises(ValueError, match='image_embeddings'):
        model.loss(torch.zeros(1, 3, 256, 256), [sample])
