# Copyright (c) samref contributors. All rights reserved.
import dataclasses
import math

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from samref.apis import InteractivePredictor, init_model
from samref.models import GlobalDiffRefiner, PatchDiffRefiner, SAMRef, refine
from samref.utils import checkpoint_key_report
from testing_utils import CONFIG_DIR, build_from_config

SAMREF_TINY = 'samref/samref_vit-tiny.py'


def randomise_norms(module):
    torch.manual_seed(1)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            if getattr(m, 'track_running_stats', False):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_(1, 0.2)
            m.bias.data.normal_(0, 0.2)


@pytest.fixture(scope='module')
def samref_tiny():
    torch.manual_seed(0)
    model = build_from_config(SAMREF_TINY).eval()
    randomise_norms(model)
    return model


def test_refine_is_equation_one():
    error = torch.tensor([0.0, 100.0, -100.0])
    detail = torch.tensor([4.0, 4.0, 4.0])
    coarse = torch.tensor([-2.0, -2.0, -2.0])
    torch.testing.assert_close(
        refine(error, detail, coarse), torch.tensor([1.0, 4.0, -2.0]))


@torch.no_grad()
def test_global_diff_on_the_valid_area_is_exact():
    # Exact for a per-pixel norm; the instance norm's statistics are those
    # of the computed area (the same area in training and testing).
    torch.manual_seed(0)
    gd = GlobalDiffRefiner(
        channels=16, num_blocks=2, reduce_channels=8, norm_cfg=dict(type='BN'))
    randomise_norms(gd)
    gd.eval()
    feats = gd.image_features(
        torch.randn(1, 3, 256, 256), torch.randn(1, 256, 16, 16))
    prompt = torch.randn(1, 3, 64, 64)
    full = gd(feats, prompt)
    part = gd(feats, prompt, valid_size=(40, 50))
    for name in ('logits', 'error', 'detail', 'features'):
        torch.testing.assert_close(part[name][..., :40, :50],
                                   full[name][..., :40, :50])
    # Outside the image nothing is refined.
    torch.testing.assert_close(part['logits'][..., 40:, :], prompt[:, 2:3,
                                                                   40:, :])
    assert (part['error'][..., :, 50:] < -100).all()


@torch.no_grad()
@pytest.mark.parametrize('norm_cfg,alike', [(None, True),
                                            (dict(type='BN'), False)])
def test_refiner_normalises_alike_in_training_and_testing(norm_cfg, alike):
    # A training step refines one sample per forward. With BatchNorm that
    # sample is normalised by its own statistics in training and by running
    # averages in testing, and the trained refiners lost to SAM at test.
    torch.manual_seed(0)
    extra = {} if norm_cfg is None else dict(norm_cfg=norm_cfg)
    gd = GlobalDiffRefiner(
        channels=16, num_blocks=2, reduce_channels=8, **extra)
    randomise_norms(gd)
    feats = gd.image_features(
        torch.randn(1, 3, 128, 128), torch.randn(1, 256, 8, 8))
    prompt = torch.randn(1, 3, 32, 32)
    trained = gd.train()(feats, prompt, valid_size=(24, 32))['logits']
    tested = gd.eval()(feats, prompt, valid_size=(24, 32))['logits']
    assert torch.allclose(trained, tested, atol=1e-5) == alike


def test_batch_norm_in_the_refiners_is_warned_about():
    with pytest.warns(UserWarning, match='batch norms'):
        build_from_config(SAMREF_TINY,
                          **{'model.global_refiner.norm_cfg': dict(type='BN')})


@torch.no_grad()
def test_click_independent_features_are_computed_once(samref_tiny):
    calls = []
    hook = samref_tiny.global_refiner.image_fusion.register_forward_hook(
        lambda *args: calls.append(1))
    try:
        predictor = InteractivePredictor(samref_tiny)
        predictor.set_image(np.zeros((60, 80, 3), np.uint8))
        out = predictor.predict([(10, 10)], [1])
        predictor.predict([(10, 10), (40, 30)], [1, 0], out)
    finally:
        hook.remove()
    assert calls == [1]


def test_valid_map_size_from_the_padding(samref_tiny):
    inputs = torch.zeros(1, 3, 1024, 1024)
    inputs[..., :683, :1024] = torch.randn(3, 683, 1024)
    inputs = inputs.repeat(2, 1, 1, 1)
    inputs[1, :, :, 500:] = 0
    assert samref_tiny.valid_map_size(inputs).tolist() == [[171, 256],
                                                           [171, 125]]


def with_error_area(result, area):
    """``result`` as if GlobalDiff's error area had been ``area``."""
    return dataclasses.replace(
        result,
        interaction=dataclasses.replace(
            result.interaction, state=dict(error_area=torch.tensor([area]))))


def interact_twice(model):
    predictor = InteractivePredictor(model)
    image = np.random.default_rng(0).integers(
        0, 256, (96, 128, 3), dtype=np.uint8)
    predictor.set_image(image)
    first = predictor.predict([(60, 40)], [1])
    return predictor, first


@torch.no_grad()
def test_selector_keeps_the_previous_mask_outside_the_window(samref_tiny):
    predictor, first = interact_twice(samref_tiny)
    assert first.interaction.branch == ['global']
    clicks = ([(60, 40), (20, 20)], [1, 0])
    # The error area "grew" (it was 0 before): PatchDiff, previous mask kept.
    grew = with_error_area(first, -1)
    second = predictor.predict(*clicks, grew)
    assert second.interaction.branch == ['patch']
    x0, y0, x1, y1 = (second.interaction.patch_refinement['boxes'][0] /
                      4).tolist()
    inside = torch.zeros(256, 256, dtype=torch.bool)
    inside[math.floor(y0):math.ceil(y1), math.floor(x0):math.ceil(x1)] = 1
    torch.testing.assert_close(second.interaction.logits[0, 0][~inside],
                               first.interaction.logits[0, 0][~inside])
    assert not torch.equal(second.interaction.logits[0, 0][inside],
                           first.interaction.logits[0, 0][inside])
    # It shrank: GlobalDiff's whole output, no PatchDiff.
    shrank = with_error_area(first, 10**9)
    third = predictor.predict(*clicks, shrank)
    assert third.interaction.branch == ['global']
    assert third.interaction.patch_refinement is None
    assert third.window is None
    torch.testing.assert_close(third.interaction.logits,
                               third.interaction.global_refinement['logits'])


@torch.no_grad()
def test_patchdiff_on_part_of_a_batch_is_each_sample_alone(samref_tiny):
    torch.manual_seed(3)
    inputs = torch.randn(2, 3, 1024, 1024)
    points = torch.tensor([[[300., 400.], [520., 610.]],
                           [[700., 200.], [640., 260.]]])
    labels = torch.tensor([[1, 1], [1, 0]])
    model = samref_tiny
    features = model.encode_image(inputs)
    first = model.interact(features, points[:, :1], labels[:, :1])
    # The second sample's error area grew, the first's shrank: PatchDiff
    # refines the second alone, a batch index picked out of two.
    first.state = dict(error_area=torch.tensor([10**9, -1]))
    both = model.interact(features, points, labels, first)
    assert both.branch == ['global', 'patch']
    alone_features = model.encode_image(inputs[1:])
    alone_first = model.interact(alone_features, points[1:, :1],
                                 labels[1:, :1])
    alone_first.state = dict(error_area=torch.tensor([-1]))
    alone = model.interact(alone_features, points[1:], labels[1:], alone_first)
    assert alone.branch == ['patch']
    torch.testing.assert_close(both.logits[1:], alone.logits)
    torch.testing.assert_close(both.pred_logits[1:], alone.pred_logits)
    torch.testing.assert_close(both.patch_refinement['logits'],
                               alone.patch_refinement['logits'])


@torch.no_grad()
def test_without_selector_patchdiff_refines_globaldiff_every_click():
    torch.manual_seed(0)
    model = build_from_config(
        SAMREF_TINY, model=dict(use_selector=False)).eval()
    predictor, first = interact_twice(model)
    assert first.interaction.branch == ['patch']
    box = (first.interaction.patch_refinement['boxes'][0] / 4).tolist()
    outside = torch.ones(256, 256, dtype=torch.bool)
    outside[math.floor(box[1]):math.ceil(box[3]),
            math.floor(box[0]):math.ceil(box[2])] = 0
    global_logits = first.interaction.global_refinement['logits']
    torch.testing.assert_close(first.interaction.logits[0, 0][outside],
                               global_logits[0, 0][outside])
    assert first.interaction.pred_logits.shape == (1, 1, 1024, 1024)


@torch.no_grad()
def test_without_refiners_it_is_sam(samref_tiny):
    model = build_from_config(
        SAMREF_TINY,
        model=dict(use_global=False, use_patch=False,
                   use_selector=False)).eval()
    model.load_state_dict(samref_tiny.state_dict())
    sam = build_from_config('sam/sam_vit-tiny.py').eval()
    sam.load_state_dict(samref_tiny.state_dict(), strict=False)
    outs = [interact_twice(m)[1] for m in (model, sam)]
    torch.testing.assert_close(outs[0].interaction.logits,
                               outs[1].interaction.logits)
    assert outs[0].interaction.branch == ['sam']


@torch.no_grad()
def test_bfloat16_refiners_agree_with_float32(samref_tiny):
    model = build_from_config(
        SAMREF_TINY, model=dict(use_selector=False,
                                refiner_dtype='bfloat16')).eval()
    model.load_state_dict(samref_tiny.state_dict())
    reference = build_from_config(
        SAMREF_TINY, model=dict(use_selector=False)).eval()
    reference.load_state_dict(samref_tiny.state_dict())
    outs = [interact_twice(m)[1] for m in (model, reference)]
    assert outs[0].interaction.global_refinement['features'].dtype == \
        torch.float32
    assert model.global_refiner.blocks[0].conv1.weight.dtype == \
        torch.float32
    # The same window, then nearly the same logits and masks.
    torch.testing.assert_close(outs[0].interaction.patch_refinement['boxes'],
                               outs[1].interaction.patch_refinement['boxes'])
    diff = (outs[0].interaction.logits - outs[1].interaction.logits).abs()
    assert 0 < diff.max() < 0.1 * outs[1].interaction.logits.abs().max()
    same = (outs[0].interaction.logits > 0) == (outs[1].interaction.logits > 0)
    assert same.float().mean() > 0.99
    # Training keeps float32.
    model.train()
    assert model.inference_dtype == torch.float32


@pytest.mark.parametrize('fast', [True, False])
def test_auto_refiner_dtype_follows_the_hardware(monkeypatch, fast):
    """``refiner_dtype='auto'`` computes in bfloat16 exactly where the
    device has bfloat16 units, and trains in float32 everywhere."""
    import samref.models.segmentors.samref as samref_module
    seen = []

    def probe(device):
        seen.append(device)
        return fast

    monkeypatch.setattr(samref_module, 'has_fast_bfloat16', probe)
    model = build_from_config(
        SAMREF_TINY, model=dict(refiner_dtype='auto')).eval()
    features = model.encode_image(torch.zeros(1, 3, 1024, 1024))
    expected = torch.bfloat16 if fast else torch.float32
    assert features['global_image'].dtype == expected
    assert seen and all(d.type == 'cpu' for d in seen)
    model.train()
    assert model.inference_dtype == torch.float32


def test_bfloat16_probe(monkeypatch):
    from samref.models.utils import has_fast_bfloat16
    cpu = torch.device('cpu')
    for amx, avx512 in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(
            torch.cpu, '_is_amx_tile_supported', lambda: amx, raising=False)
        monkeypatch.setattr(
            torch.cpu,
            '_is_avx512_bf16_supported',
            lambda: avx512,
            raising=False)
        for capability in ('AVX512', 'AVX2', 'DEFAULT'):
            monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability',
                                lambda: capability)
            assert has_fast_bfloat16(cpu) == ((amx or avx512)
                                              and capability == 'AVX512')
    monkeypatch.delattr(torch.cpu, '_is_amx_tile_supported')
    monkeypatch.delattr(torch.cpu, '_is_avx512_bf16_supported')
    assert not has_fast_bfloat16(cpu)  # an older torch: no probes
    assert not has_fast_bfloat16(torch.device('meta'))


def test_unknown_refiner_dtype_is_rejected():
    with pytest.raises(ValueError, match='refiner_dtype'):
        build_from_config(SAMREF_TINY, model=dict(refiner_dtype='float16'))


@pytest.mark.parametrize('switches', [
    dict(use_global=False),
    dict(use_patch=False),
    dict(use_global=False, use_selector=False)
])
def test_inconsistent_switches_are_rejected(switches):
    with pytest.raises(ValueError, match='need'):
        build_from_config(SAMREF_TINY, model=switches)


def test_sam_checkpoint_reports_exactly_the_new_keys(tmp_path, samref_tiny):
    sam = build_from_config('sam/sam_vit-tiny.py')
    path = tmp_path / 'sam_tiny.pth'
    torch.save(sam.state_dict(), path)
    model = build_from_config(SAMREF_TINY)
    loaded = load_checkpoint(model, str(path))
    report = checkpoint_key_report(model, loaded)
    expected = sorted(k for k in model.state_dict()
                      if k.startswith(('global_refiner.', 'patch_refiner.')))
    assert report['new'] == expected and len(expected) > 50
    assert report['unexpected'] == [] and report['mismatched'] == []
    torch.testing.assert_close(model.mask_decoder.state_dict(),
                               sam.mask_decoder.state_dict())


def test_samref_checkpoint_round_trips_strictly(tmp_path, samref_tiny):
    path = tmp_path / 'samref_tiny.pth'
    torch.save(samref_tiny.state_dict(), path)
    model = init_model(CONFIG_DIR / SAMREF_TINY, str(path), strict=True)
    for key, value in samref_tiny.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_losses_of_equation_three_reach_only_the_refiners():
    torch.manual_seed(0)
    model = build_from_config(SAMREF_TINY, model=dict(use_selector=False))
    model.train()
    inputs = torch.randn(2, 3, 1024, 1024)
    gt = torch.zeros(2, 1, 1024, 1024, dtype=torch.long)
    gt[:, :, 200:600, 300:700] = 1
    gt[:, :, 900:] = -1
    features = model.encode_image(inputs)
    outputs = model.interact(features, torch.tensor([[[400.0, 400.0]]] * 2),
                             torch.ones(2, 1, dtype=torch.long))
    losses = model.interaction_losses(outputs, gt)
    assert set(losses) == {
        'loss_nfl', 'loss_dice_global', 'loss_bce_global', 'loss_bnfl_global',
        'loss_dice_patch', 'loss_bce_patch', 'loss_bnfl_patch'
    }
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        trains = name.startswith(('global_refiner.', 'patch_refiner.'))
        assert param.requires_grad == trains, name
        assert (param.grad is not None) == trains, name
    # The frozen parts stay in eval mode while the model trains.
    assert not model.mask_decoder.training and model.global_refiner.training


def test_error_head_losses_match_hand_values(samref_tiny):
    # Error logits 0 (p = 0.5) everywhere; SAM's mask is empty, the object
    # covers 4 of 16 valid pixels: the error region is the object.
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    target[..., :2, :2] = 1
    out = dict(error=torch.zeros(1, 1, 4, 4), logits=torch.zeros(1, 1, 4, 4))
    losses = samref_tiny.refiner_losses('global', out,
                                        torch.full((1, 1, 4, 4), -5.0), target)
    assert losses['loss_bce_global'].item() == pytest.approx(math.log(2))
    # V-Net dice: 1 - 2 * sum(p t) / (sum(p^2) + sum(t^2)), eps 1e-3.
    dice = 1 - 2 * 2.0 / ((4.0 + 1e-3) + (4.0 + 1e-3))
    assert losses['loss_dice_global'].item() == pytest.approx(dice, rel=1e-5)
    assert losses['loss_bnfl_global'].item() == pytest.approx(
        (1.5 * 4 + 12) / 16 * 0.5 * math.log(2), rel=1e-5)


def test_refined_dice_leaves_out_ignored_pixels():
    model = build_from_config(
        SAMREF_TINY,
        model=dict(
            losses=dict(
                global_refined_dice=dict(
                    type='DiceLoss',
                    use_sigmoid=True,
                    loss_name='loss_dice_refined'))))
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    target[..., :2, :2] = 1
    target[..., 3, :] = -1  # four ignored pixels, predicted 1 there
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., 3, :] = 10.0
    out = dict(error=torch.zeros(1, 1, 4, 4), logits=logits)
    losses = model.refiner_losses('global', out, torch.zeros(1, 1, 4, 4),
                                  target)
    # p = 0.5 on the 12 valid pixels, 0 on the ignored ones.
    dice = 1 - 2 * 2.0 / ((12 * 0.25 + 1e-3) + (4.0 + 1e-3))
    assert losses['loss_dice_refined'].item() == pytest.approx(dice, rel=1e-5)


def test_stage_one_sam_trains_only_the_decoder():
    model = build_from_config(
        'sam/sam_vit-tiny.py',
        model=dict(
            frozen_modules=('image_encoder', 'prompt_encoder'),
            losses=dict(decoder=dict(type='NormalizedFocalLoss'))))
    model.train()
    features = model.encode_image(torch.randn(1, 3, 1024, 1024))
    outputs = model.interact(features, torch.tensor([[[100.0, 100.0]]]),
                             torch.ones(1, 1, dtype=torch.long))
    gt = torch.zeros(1, 1, 1024, 1024, dtype=torch.long)
    gt[..., :300, :300] = 1
    losses = model.interaction_losses(outputs, gt)
    assert list(losses) == ['loss_nfl']
    losses['loss_nfl'].backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith('mask_decoder.') for n in trained)
    assert 'mask_decoder.output_upscaling.0.weight' in trained


def test_error_prior_sets_the_error_bias_before_a_pretrained_init(tmp_path):
    torch.manual_seed(0)
    refiner = GlobalDiffRefiner(
        channels=8, reduce_channels=4, num_blocks=1, error_prior=0.018)
    detail_bias = refiner.error_detail.bias[1].item()
    refiner.init_weights()
    assert refiner.error_detail.bias[0].item() == pytest.approx(-4.0, 1e-3)
    assert refiner.error_detail.bias[1].item() == detail_bias
    patch = PatchDiffRefiner(
        feat_channels=8, channels=8, patch_size=16, error_prior=0.5)
    patch.init_weights()
    assert patch.error_head[-1].bias.abs().max() == 0
    # Weights loaded by init_cfg are not overwritten by the prior.
    with torch.no_grad():
        refiner.error_detail.bias.fill_(1.5)
    torch.save(refiner.state_dict(), tmp_path / 'refiner.pth')
    loaded = GlobalDiffRefiner(
        channels=8,
        reduce_channels=4,
        num_blocks=1,
        error_prior=0.018,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(tmp_path / 'refiner.pth')))
    loaded.init_weights()
    assert loaded.error_detail.bias.tolist() == [1.5, 1.5]
    with pytest.raises(ValueError, match='error_prior'):
        PatchDiffRefiner(error_prior=1.0)


# SAM-REF at a 256 input on an image encoder with 8-pixel patches (the
# demo's): SAM's logits are S/2, the refiners still work at S/4.
PATCH_8_AT_256 = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(img_size=256, patch_size=8),
    prompt_encoder=dict(
        image_embedding_size=(32, 32), input_image_size=(256, 256)),
    global_refiner=dict(embed_stride=8))


@torch.no_grad()
def test_refiners_work_at_a_quarter_of_the_input_on_8_pixel_patches():
    torch.manual_seed(0)
    model = build_from_config(SAMREF_TINY, model=PATCH_8_AT_256).eval()
    predictor, first = interact_twice(model)
    assert first.interaction.logits.shape == (1, 1, 64, 64)
    assert first.interaction.global_refinement['features'].shape[-2:] == (64,
                                                                          64)
    # The fed-back S/4 logits are SAM's mask prompt at its S/2 size.
    second = predictor.predict([(60, 40), (20, 20)], [1, 0], first)
    assert second.interaction.logits.shape == (1, 1, 64, 64)
    # Without refiners the logits are SAM's, each 2 x 2 block averaged.
    bare = build_from_config(
        SAMREF_TINY,
        model=dict(
            PATCH_8_AT_256,
            use_global=False,
            use_patch=False,
            use_selector=False)).eval()
    bare.load_state_dict(model.state_dict())
    sam = build_from_config(
        'sam/sam_vit-tiny.py',
        model={
            k: v
            for k, v in PATCH_8_AT_256.items() if k != 'global_refiner'
        }).eval()
    sam.load_state_dict(model.state_dict(), strict=False)
    sam_out = interact_twice(sam)[1]
    assert sam_out.interaction.logits.shape == (1, 1, 128, 128)
    torch.testing.assert_close(
        interact_twice(bare)[1].interaction.logits,
        torch.nn.functional.avg_pool2d(sam_out.interaction.logits, 2))


def test_global_diff_upscales_stride_8_embeddings_once():
    refiner = GlobalDiffRefiner(
        channels=8,
        reduce_channels=4,
        num_blocks=1,
        embed_channels=16,
        embed_stride=8)
    features = refiner.image_features(
        torch.zeros(1, 3, 64, 64), torch.zeros(1, 16, 8, 8))
    assert features['image'].shape[-2:] == (16, 16)
    assert features['embeddings'][0].shape[-2:] == (16, 16)
    with pytest.raises(ValueError, match='embed_stride'):
        GlobalDiffRefiner(embed_stride=4)


def test_detail_bce_scores_the_detail_map_everywhere_but_ignored_pixels():
    model = build_from_config(
        SAMREF_TINY,
        model=dict(
            losses=dict(
                global_detail_bce=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=True,
                    avg_non_ignore=True,
                    loss_name='loss_bce_detail'))))
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    target[..., :2, :2] = 1
    target[..., 3, :] = -1
    detail = torch.zeros(1, 1, 4, 4)
    detail[..., :2, :2] = 2.0  # right on the object
    detail[..., 3, :] = -50.0  # ignored, would cost 50 each
    # The error map is closed everywhere: equation (3) alone would not
    # reach the detail map; this term does, on all 12 valid pixels.
    out = dict(
        error=torch.full((1, 1, 4, 4), -20.0),
        detail=detail,
        logits=torch.zeros(1, 1, 4, 4))
    losses = model.refiner_losses('global', out, torch.zeros(1, 1, 4, 4),
                                  target)
    expected = (4 * math.log1p(math.exp(-2.0)) + 8 * math.log(2)) / 12
    assert losses['loss_bce_detail'].item() == pytest.approx(
        expected, rel=1e-5)


@pytest.mark.parametrize('config,term', [
    ('sam/sam_vit-tiny.py', 'decodr_dice'),
    (SAMREF_TINY, 'global_refined_dcie'),
    ('focsam/focsam_vit-tiny.py', 'clik'),
])
def test_a_misspelt_loss_term_fails_at_build_with_the_valid_names(
        config, term):
    with pytest.raises(
            ValueError,
            match=f"no loss term '{term}'; its terms "
            r'are decoder: decoder, decoder_dice; encoder'):
        build_from_config(
            config, model=dict(losses={term: dict(type='DiceLoss')}))


@pytest.mark.parametrize('config', [SAMREF_TINY, 'focsam/focsam_vit-tiny.py'])
def test_every_model_refuses_training_a_frozen_encoder(config):
    """The guard of SAM's constructor runs for its subclasses too: they
    freeze through it."""
    with pytest.raises(ValueError, match='frozen_modules freezes it'):
        build_from_config(
            config,
            model=dict(
                losses=dict(encoder=dict(type='PrototypeSimilarityLoss')),
                frozen_modules=('image_encoder', )))


DEMO_STAGE2 = 'demo/samref_tiny_256_stage2.py'


def capture_inputs(monkeypatch, module, calls):
    """Record the positional and keyword inputs of ``module``'s forward."""
    forward = module.forward

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return forward(*args, **kwargs)

    monkeypatch.setattr(module, 'forward', recording)


@torch.no_grad()
@pytest.mark.parametrize('box_channel', [False, True])
def test_a_box_reaches_sam_and_with_box_channel_both_refiners(
        monkeypatch, box_channel):
    torch.manual_seed(0)
    model = build_from_config(
        DEMO_STAGE2, model=dict(box_channel=box_channel,
                                use_selector=False)).eval()
    assert model.global_refiner.prompt_channels == 3 + box_channel
    assert model.patch_refiner.prompt_channels == 3 + box_channel
    features = model.encode_image(torch.randn(1, 3, 256, 256))
    box = torch.tensor([[40.0, 60.0, 160.0, 200.0]])
    no_clicks = (torch.zeros(1, 0, 2), torch.zeros(1, 0, dtype=torch.long))
    global_calls, patch_calls = [], []
    capture_inputs(monkeypatch, model.global_refiner, global_calls)
    capture_inputs(monkeypatch, model.patch_refiner, patch_calls)
    # The box alone: SAM's mask of the box, GlobalDiff, no PatchDiff.
    first = model.interact(features, *no_clicks, boxes=box)
    assert first.branch == ['global'] and first.patch_refinement is None
    unboxed = model.predict_mask(features, torch.tensor([[[100.0, 130.0]]]),
                                 torch.ones(1, 1, dtype=torch.long))
    assert not torch.equal(first.coarse, unboxed.logits)
    (_, prompt_map, _), _ = global_calls[0]
    assert prompt_map.shape[1] == 3 + box_channel
    torch.testing.assert_close(prompt_map[:, -1:], first.coarse)
    if box_channel:
        # The map is 64 x 64 over the 256 input: 4 pixels per map pixel.
        expected = torch.zeros(64, 64)
        expected[15:50, 10:40] = 1
        torch.testing.assert_close(prompt_map[0, 2], expected)
    # A click with the box: PatchDiff refines its window, with the box.
    second = model.interact(features, torch.tensor([[[100.0, 130.0]]]),
                            torch.ones(1, 1, dtype=torch.long), first, box)
    assert second.branch == ['patch']
    args, _ = patch_calls[0]
    torch.testing.assert_close(args[-1], box)
    with_box = model.global_refiner(*global_calls[-1][0])['logits']
    (image, prompt_map, valid), _ = global_calls[-1]
    if box_channel:
        prompt_map = prompt_map.clone()
        prompt_map[:, 2] = 0
        without_box = model.global_refiner(image, prompt_map, valid)['logits']
        assert not torch.equal(with_box, without_box)


def test_box_channel_and_refiner_prompt_channels_must_agree():
    with pytest.raises(
            ValueError,
            match='prompt_channels=3 does not match '
            'box_channel=True'):
        build_from_config(
            DEMO_STAGE2,
            model=dict(
                box_channel=True, global_refiner=dict(prompt_channels=3)))
    with pytest.raises(ValueError, match='prompt_channels must be 3'):
        GlobalDiffRefiner(prompt_channels=5)


def box_first_training_model(**train_cfg) -> SAMRef:
    """The demo's stage-2 SAM-REF with the box channel, in training mode,
    every sample starting with a box; seeded."""
    torch.manual_seed(0)
    np.random.seed(0)
    return build_from_config(
        DEMO_STAGE2,
        model=dict(
            box_channel=True,
            train_cfg=dict(click_sampler=dict(box_prob=1.0),
                           **train_cfg))).train()


def test_box_first_training_samples_train_the_refiners():
    model = box_first_training_model()
    gt = torch.zeros(1, 1, 256, 256, dtype=torch.long)
    gt[:, :, 60:140, 90:200] = 1
    inputs = torch.randn(1, 3, 256, 256)
    for extra in (0, 2):
        features = model.encode_image(inputs)
        points, labels, boxes, previous = model.simulate_clicks(
            features, gt, 0.6, num_extra_clicks=extra)
        assert boxes.shape == (1, 4) and points.shape == (1, extra, 2)
        # The jittered box lies around the object (60 .. 140, 90 .. 200).
        x0, y0, x1, y1 = boxes[0].tolist()
        assert abs(x0 - 90) < 20 and abs(y1 - 140) < 20
        assert (previous is None) == (extra == 0)
        outputs = model.interact(features, points, labels, previous, boxes)
        assert (outputs.patch_refinement is None) == (extra == 0)
        losses = model.interaction_losses(outputs, gt)
        loss = sum(losses.values())
        assert torch.isfinite(loss)
        model.zero_grad()
        loss.backward()
        assert model.global_refiner.prompt_fusion.weight.grad[:, 2].abs().sum(
        ) > 0


def test_box_alone_loss_trains_the_refiners_on_the_box_alone(monkeypatch):
    model = box_first_training_model(box_alone_loss=True)
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    gt = torch.zeros(1, 256, 256, dtype=torch.long)
    gt[:, 60:140, 90:200] = 1
    sample.gt_sem_seg = PixelData(data=gt)
    monkeypatch.setattr(model.click_sampler, 'num_extra_clicks',
                        lambda gamma: 2)
    supervised, interact = [], model.interact

    def record(features, points, labels, previous=None, boxes=None):
        if torch.is_grad_enabled():
            supervised.append((points.shape[1], boxes is not None))
        return interact(features, points, labels, previous, boxes)

    monkeypatch.setattr(model, 'interact', record)
    losses = model.loss(torch.randn(1, 3, 256, 256), [sample])
    # The box with its two clicks, then the box alone.
    assert supervised == [(2, True), (0, True)]
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    # The box channel of GlobalDiff's prompt map gets its gradient.
    assert model.global_refiner.prompt_fusion.weight.grad[:, 2].abs().sum() > 0
