# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmcv.ops import ModulatedDeformConv2dPack, modulated_deform_conv2d
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from samref.apis import InteractivePredictor
from samref.models import ClickLoss, FocSAMRefiner
from samref.models.heads import focsam_refiner
from samref.models.heads.focsam_refiner import (DynamicWindowBlock,
                                                NullSlotAttention, PDyReLU)
from samref.models.utils import focus_window_mask
from samref.models.utils.deform_conv import (ModulatedDeformConv3x3,
                                             sampled_modulated_deform_conv)
from testing_utils import CONFIG_DIR, build_from_config

FOCSAM_TINY = 'focsam/focsam_vit-tiny.py'
# 256 x 256 input (16 x 16 embedding, so 4 x 4 windows of 4 cells) and two
# refiner blocks: every code path at test speed.
SMALL = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(img_size=256),
    prompt_encoder=dict(
        image_embedding_size=(16, 16), input_image_size=(256, 256)),
    refiner=dict(depth=2, window_size=4))


def small_focsam(**model):
    torch.manual_seed(0)
    return build_from_config(FOCSAM_TINY, model=dict(SMALL, **model)).eval()


@torch.no_grad()
def test_null_slot_attention_adds_a_zero_key_and_value():
    torch.manual_seed(0)
    attn = NullSlotAttention(8, num_heads=2)
    query, key = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    q = attn.q_proj(query).view(1, 3, 2, 4).transpose(1, 2)
    k = attn.k_proj(key).view(1, 5, 2, 4).transpose(1, 2)
    v = attn.v_proj(key).view(1, 5, 2, 4).transpose(1, 2)
    scores = torch.cat([q @ k.transpose(2, 3),
                        torch.zeros(1, 2, 3, 1)], dim=3) / 2.0  # sqrt(4)
    weights = scores.softmax(dim=3)[..., :5]  # the null value is 0
    expected = attn.out_proj((weights @ v).transpose(1, 2).reshape(1, 3, 8))
    torch.testing.assert_close(attn(query, key, key), expected)


@torch.no_grad()
def test_pdyrelu_is_the_max_of_two_token_steered_lines():
    torch.manual_seed(0)
    act = PDyReLU(4)
    x, token = torch.randn(2, 6, 4), torch.randn(2, 1, 4)
    # Constant branches: slopes/offsets tanh(bias) * exp(scale) + bias'.
    for mlp, value in ((act.pixel_mlp, 0.5), (act.channel_mlp, -0.3)):
        mlp[2].weight.zero_()
        mlp[2].bias.fill_(value)
    act.pixel_scale.fill_(np.log(2.0))
    act.channel_bias.fill_(0.1)
    pixel = 2 * np.tanh(0.5)
    channel = np.tanh(-0.3) + 0.1
    expected = torch.maximum(pixel * x + pixel, channel * x + channel)
    torch.testing.assert_close(act(x, token), expected)
    # The pixel branch sees each pixel's similarity with the token.
    act.pixel_mlp[2].weight.normal_()
    moved = act(x, token * 2)
    assert not torch.allclose(moved, act(x, token))


def test_focus_window_is_the_enlarged_box_of_the_coarse_mask():
    logits = torch.full((2, 1, 64, 64), -5.0)
    logits[0, 0, 20:30, 10:20] = 5.0  # 80..120 x 40..80 at 256
    focus = focus_window_mask(logits, (256, 256), (1.4, 1.4), (256, 256))
    rows = focus[0, 0].any(dim=1).nonzero()[:, 0]
    cols = focus[0, 0].any(dim=0).nonzero()[:, 0]
    # Box (40, 80, 80, 120) at 1.4 about its centre: 32..88, 72..128.
    assert (cols[0].item(), cols[-1].item() + 1) == (32, 88)
    assert (rows[0].item(), rows[-1].item() + 1) == (72, 128)
    assert focus[1].all()  # empty mask: everything
    # On the embedding grid a cell is in if any of its pixels is.
    grid = focus_window_mask(logits, (256, 256), (1.0, 1.0), (16, 16))
    assert grid[0, 0].nonzero()[:, 0].unique().tolist() == [5, 6, 7]
    assert grid[0, 0].nonzero()[:, 1].unique().tolist() == [2, 3, 4]
    # Clipped to the input.
    edge = torch.full((1, 1, 64, 64), -5.0)
    edge[..., :8, :8] = 5.0
    assert focus_window_mask(edge, (256, 256), (3.0, 3.0),
                             (256, 256))[0, 0, :64, :64].all()


@pytest.mark.parametrize('shift', [False, True])
@torch.no_grad()
def test_block_computes_only_the_windows_touching_the_focus(shift):
    torch.manual_seed(0)
    block = DynamicWindowBlock(16, 2, window_size=4, shift=shift).eval()
    x, token = torch.randn(1, 16, 12, 12), torch.randn(1, 1, 16)
    focus = torch.zeros(1, 1, 12, 12)
    focus[..., 5, 5] = 1
    out, new_token = block(x, token, focus)
    changed = (out != x).any(dim=1)[0]
    # Plain windows start at 0, 4, 8; shifted ones at 2, 6, 10 (wrapping).
    window = slice(4, 8) if not shift else slice(2, 6)
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[window, window] = True
    assert torch.equal(changed, expected)
    # One window of nine selected: the coverage scale (w = 1, b = 0) turns
    # the mean over all windows into that window's token.
    windows = block.partition(torch.roll(x, (-2, -2), (2, 3)) if shift else x)
    index = 4 if not shift else 0  # row-major window holding cell (5, 5)
    alone = block.token_update(token, windows[index:index + 1].flatten(2).mT)
    torch.testing.assert_close(new_token, alone)


def test_refiner_has_the_released_size():
    refiner = FocSAMRefiner()
    state = refiner.state_dict()
    assert len(state) == 662  # FocSAM's refine_head.* tensors
    params = sum(p.numel() for p in refiner.parameters())
    assert 25.0e6 < params < 25.8e6
    assert [b.shift for b in refiner.blocks] == [False, True] * 6
    assert [b.coverage_scale is None
            for b in refiner.blocks] == [False] * 11 + [True]


def test_training_draws_the_focus_expansion():
    refiner = FocSAMRefiner(depth=1).eval()
    assert refiner.current_expand_ratio() == (1.4, 1.4)
    refiner.train()
    ratios = np.array([refiner.current_expand_ratio() for _ in range(200)])
    assert ratios.min() >= 1.0 and ratios.max() <= 1.4
    assert ratios.std() > 0.05 and not np.allclose(ratios[:, 0], ratios[:, 1])
    with refiner.fixed_expand_ratio((1.1, 1.3)):
        assert {refiner.current_expand_ratio()
                for _ in range(5)} == {(1.1, 1.3)}
        refiner.eval()
        assert refiner.current_expand_ratio() == (1.1, 1.3)
    assert refiner.current_expand_ratio() == (1.4, 1.4)


def click_through(model, clicks):
    """Run clicks through the predictor, returning every output."""
    predictor = InteractivePredictor(model)
    image = np.random.default_rng(0).integers(
        0, 256, (96, 128, 3), dtype=np.uint8)
    predictor.set_image(image)
    outputs, previous = [], None
    for k in range(1, len(clicks) + 1):
        previous = predictor.predict([c[:2] for c in clicks[:k]],
                                     [c[2] for c in clicks[:k]], previous)
        outputs.append(previous)
    return predictor, outputs


CLICKS = [(60, 40, 1), (20, 20, 0), (100, 70, 1), (30, 80, 0)]


@torch.no_grad()
def test_refines_once_at_the_second_click_then_reuses_the_embedding():
    model = small_focsam()
    calls = []
    hook = model.refiner.register_forward_hook(
        lambda module, args, out: calls.append(out))
    try:
        with model.timing_stages():
            predictor, outputs = click_through(model, CLICKS)
    finally:
        hook.remove()
    assert len(calls) == 1
    branches = [o.interaction.branch for o in outputs]
    assert branches == [['sam'], ['refine'], ['sam'], ['sam']]
    assert 'focus_refiner' in outputs[1].interaction.stage_times
    assert 'focus_refiner' not in outputs[2].interaction.stage_times
    assert not model.time_stages  # restored after the block
    # Without timing nothing is timed (nor synchronised).
    assert all(not o.interaction.stage_times
               for o in click_through(model, CLICKS)[1])
    original = predictor.image_features['image_embeddings']
    assert torch.equal(outputs[0].interaction.state['image_embeddings'],
                       original)
    for out in outputs[1:]:
        assert torch.equal(out.interaction.state['image_embeddings'], calls[0])
    assert not torch.allclose(calls[0], original)
    # The first click is SAM's; later ones decode the refined embedding.
    sam = build_from_config(
        'sam/sam_vit-tiny.py',
        model={
            k: v
            for k, v in SMALL.items() if k != 'refiner'
        }).eval()
    sam.load_state_dict(model.state_dict(), strict=False)
    _, sam_outputs = click_through(sam, CLICKS[:1])
    torch.testing.assert_close(outputs[0].interaction.logits,
                               sam_outputs[0].interaction.logits)
    points = torch.tensor([[c[:2] for c in CLICKS[:3]]], dtype=torch.float)
    points = points * torch.as_tensor(predictor.metainfo['scale_factor'])
    expected, _ = model.decode(calls[0], points,
                               torch.tensor([[c[2] for c in CLICKS[:3]]]),
                               outputs[1].interaction.logits)
    torch.testing.assert_close(outputs[2].interaction.logits, expected)


@torch.no_grad()
def test_refine_step_is_a_setting():
    model = small_focsam(refine_step=0)
    _, outputs = click_through(model, CLICKS[:2])
    assert [o.interaction.branch for o in outputs] == [['refine'], ['sam']]


@torch.no_grad()
def test_coarse_pass_returns_mask_token_zero():
    model = small_focsam()
    features = model.encode_image(torch.randn(1, 3, 256, 256))
    upscaled = []
    hook = model.mask_decoder.output_upscaling.register_forward_hook(
        lambda module, args, out: upscaled.append(out))
    try:
        logits, token = model.coarse_decode(features['image_embeddings'],
                                            torch.tensor([[[100.0, 60.0]]]),
                                            torch.ones(1, 1, dtype=torch.long),
                                            None)
    finally:
        hook.remove()
    assert token.shape == (1, 1, 256)
    # Mask token 0 through its hypernetwork MLP gives the single mask.
    weights = model.mask_decoder.output_hypernetworks_mlps[0](token[:, 0])
    image = upscaled[0]
    rebuilt = (weights[:, None] @ image.flatten(2)).view(logits.shape)
    torch.testing.assert_close(rebuilt, logits)


def test_click_loss_matches_hand_values():
    logits = torch.zeros(1, 1, 4, 4)
    logits[0, 0, 1, 2] = 100.0  # p = 1 at (x=2, y=1)
    points = torch.tensor([[[2.7, 1.2], [0.0, 3.0], [1.0, 1.0]]])
    labels = torch.tensor([[1, 1, -1]])
    # (1 - 1)^2 and (0.5 - 1)^2 over the two valid clicks.
    loss = ClickLoss(loss_weight=2.0)(logits, points, labels)
    assert loss.item() == pytest.approx(2.0 * 0.25 / 2)


def test_click_loss_pools_the_valid_clicks_of_the_batch():
    # FocSAM averages the squared errors over every valid click of the
    # batch: one click with error 1 and three with error 0 give 1 / 4, not
    # the mean of the per-sample means (1 + 0) / 2.
    logits = torch.full((2, 1, 4, 4), 100.0)
    logits[0] = -100.0  # p = 0 everywhere in sample 0
    points = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
                           [[0.0, 0.0], [3.0, 1.0], [2.0, 3.0]]])
    labels = torch.tensor([[1, -1, -1], [1, 1, 1]])
    assert ClickLoss()(logits, points, labels).item() == pytest.approx(0.25)
    no_click = ClickLoss()(logits, points, torch.full_like(labels, -1))
    assert no_click.item() == 0


def test_stage_two_trains_only_the_refiner():
    model = small_focsam()
    model.train()
    gt = torch.zeros(1, 256, 256, dtype=torch.long)
    gt[:, 60:160, 80:200] = 1
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    sample.gt_sem_seg = PixelData(data=gt)
    refiner_calls = []
    hook = model.refiner.register_forward_hook(
        lambda module, args, out: refiner_calls.append(out.requires_grad))
    try:
        losses = model.loss(torch.randn(1, 3, 256, 256), [sample])
    finally:
        hook.remove()
    assert {'loss_nfl', 'loss_click'} <= set(losses)
    # The last refiner run is the one with gradients.
    assert refiner_calls[-1] and not any(refiner_calls[:-1])
    (losses['loss_nfl'] + losses['loss_click']).backward()
    for name, param in model.named_parameters():
        trains = name.startswith('refiner.')
        assert param.requires_grad == trains, name
        assert (param.grad is not None) == trains, name
    assert not model.mask_decoder.training and model.refiner.training


@pytest.mark.parametrize('bgr_to_rgb', [True, False])
def test_input_colour_order_setting(bgr_to_rgb):
    model = small_focsam(data_preprocessor=dict(bgr_to_rgb=bgr_to_rgb))
    bgr = torch.zeros(3, 8, 8, dtype=torch.uint8)
    bgr[0], bgr[2] = 200, 10  # blue 200, red 10, as cv2 loads them
    inputs = model.data_preprocessor(
        dict(inputs=[bgr], data_samples=[SegDataSample()]), False)['inputs']
    first = inputs[0, 0, 0, 0].item()
    red, blue = (10 - 123.675) / 58.395, (200 - 123.675) / 58.395
    assert first == pytest.approx(red if bgr_to_rgb else blue, abs=1e-4)


@torch.no_grad()
def test_sampled_deform_conv_matches_mmcv_kernel():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9)
    # Offsets reaching well outside the input, modulation in (0, 1).
    offset = torch.randn(2, 18, 7, 9) * 3
    mask = torch.rand(2, 9, 7, 9)
    weight = torch.randn(4, 5, 3, 3)
    expected = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1,
                                       1, 1)
    torch.testing.assert_close(
        sampled_modulated_deform_conv(x, offset, mask, weight, 1),
        expected,
        atol=1e-5,
        rtol=1e-5)


def test_deform_conv_cpu_path_is_mmcv_module_with_gradients():
    torch.manual_seed(0)
    conv = ModulatedDeformConv3x3(6, 4)
    reference = ModulatedDeformConv2dPack(6, 4, 3, padding=1, bias=False)
    assert conv.state_dict().keys() == reference.state_dict().keys()
    with torch.no_grad():
        conv.conv_offset.weight.normal_(0, 0.3)
        conv.conv_offset.bias.normal_(0, 1)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(3, 6, 8, 8, requires_grad=True)
    ours = conv(x)
    torch.testing.assert_close(ours, reference(x), atol=1e-5, rtol=1e-5)
    ours.square().sum().backward()
    assert conv.conv_offset.weight.grad.abs().sum() > 0


def test_focal_loss_eps_is_float32_epsilon_as_focsam():
    model = small_focsam()
    assert model.losses['decoder'].eps == torch.finfo(torch.float32).eps


def test_ground_truth_padding_is_background_in_the_loss():
    # FocSAM pads the ground truth with 0: background, not ignored.
    model = small_focsam(
        train_cfg=dict(click_sampler=dict(max_extra_clicks=2))).train()
    image = torch.zeros(3, 256, 192, dtype=torch.uint8)  # padded to 256
    gt = torch.zeros(1, 256, 192, dtype=torch.long)
    gt[:, 60:160, 40:150] = 1
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    sample.gt_sem_seg = PixelData(data=gt)
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), True)
    targets = []
    hook = model.losses['decoder'].register_forward_hook(
        lambda module, args, out: targets.append(args[1]))
    try:
        model.loss(**data)
    finally:
        hook.remove()
    target = targets[0][0, 0]
    assert target.shape == (256, 256)
    assert (target[:, 192:] == 0).all()
    assert torch.equal(target[:, :192], gt[0])


def test_deform_conv_starts_as_focsam_initialises_it():
    # FocSAM: the offset/modulation convolution keeps PyTorch's default
    # (uniform within 1 / sqrt(fan_in), fan_in = 256 x 9), the kernel is
    # normal with std sqrt(2 / (fan_in + 256)) = 0.0280. mmcv's own init
    # zeroes the former and draws the latter uniformly (std 0.0120).
    torch.manual_seed(0)
    model = small_focsam()
    model.init_weights()  # the runner's call must keep them
    bound = 1 / (256 * 9)**0.5
    for block in model.refiner.blocks:
        conv = block.window_update.deform_conv
        kernel = conv.weight.detach().double().flatten()
        assert kernel.mean().abs() < 1e-4
        assert kernel.std().item() == pytest.approx((2 / 2560)**0.5, rel=0.01)
        kurtosis = ((kernel - kernel.mean())**4).mean() / kernel.var()**2
        assert kurtosis.item() == pytest.approx(3.0, abs=0.05)  # normal
        offset_weight = conv.conv_offset.weight.detach().double()
        assert offset_weight.abs().max() <= bound
        assert offset_weight.std().item() == pytest.approx(
            bound / 3**0.5, rel=0.02)
        offset_bias = conv.conv_offset.bias.detach()
        assert offset_bias.abs().max() <= bound
        assert (offset_bias != 0).all()


def training_sample(source=None, click_gamma=0.6):
    """A 256 x 256 training sample: a rectangle, ``source`` and
    ``click_gamma`` in the metainfo."""
    gt = torch.zeros(1, 256, 256, dtype=torch.long)
    gt[:, 60:160, 80:200] = 1
    sample = SegDataSample(
        metainfo=dict(click_gamma=click_gamma, source=source))
    sample.gt_sem_seg = PixelData(data=gt)
    return sample


def test_loss_pools_the_click_loss_over_the_batch():
    # No extra click for the COCO sample, two for the LVIS one: 1 and 3
    # clicks, averaged together as FocSAM's clk_loss does.
    np.random.seed(0)
    model = small_focsam().train()
    model.click_sampler.num_extra_clicks = lambda gamma: {
        0.6: 0,
        0.9: 2
    }[gamma]
    calls = []
    hook = model.losses['click'].register_forward_hook(
        lambda module, args, out: calls.append(args))
    try:
        losses = model.loss(
            torch.randn(2, 3, 256, 256),
            [training_sample('coco', 0.6),
             training_sample('lvis', 0.9)])
    finally:
        hook.remove()
    (logits, points, labels), = calls
    assert (labels >= 0).sum(dim=1).tolist() == [1, 3]
    cols, rows = points.long().unbind(dim=2)
    prob = logits[torch.arange(2)[:, None], 0, rows, cols].sigmoid()
    errors = (prob - labels.clamp(min=0))**2
    valid = labels >= 0
    pooled = errors[valid].mean()
    per_sample = torch.stack([errors[i][valid[i]].mean() for i in range(2)])
    assert not torch.isclose(pooled, per_sample.mean())
    torch.testing.assert_close(losses['loss_click'], pooled)
    assert losses['clicks'].item() == 2.0


def test_focus_box_scaling_is_drawn_per_group_and_for_the_gradient_pass(
        monkeypatch):
    # FocSAM's code draws the scaling once per dataset for its batched
    # simulation and again for the gradient pass of the whole batch.
    np.random.seed(0)
    model = small_focsam().train()
    model.click_sampler.num_extra_clicks = lambda gamma: 2
    model.draw_refine_step = lambda num_extra_clicks, gamma: 0
    used = []

    def recording_focus(logits, input_size, expand_ratio, out_size):
        used.append((torch.is_grad_enabled(), tuple(expand_ratio)))
        return focus_window_mask(logits, input_size, expand_ratio, out_size)

    monkeypatch.setattr(focsam_refiner, 'focus_window_mask', recording_focus)
    model.loss(
        torch.randn(3, 3, 256, 256), [
            training_sample('coco', 0.6),
            training_sample('lvis', 0.9),
            training_sample('coco', 0.6)
        ])
    simulated = [ratio for grad, ratio in used if not grad]
    gradient = [ratio for grad, ratio in used if grad]
    assert len(simulated) == len(gradient) == 3
    coco, lvis = simulated[0], simulated[1]
    assert simulated[2] == coco and lvis != coco
    assert gradient == [gradient[0]] * 3
    assert gradient[0] not in (coco, lvis)
    for ratio in (coco, lvis, gradient[0]):
        assert all(1.0 <= r <= 1.4 for r in ratio)


def test_a_group_shares_its_click_numbers_and_lvis_refines_earlier():
    np.random.seed(0)
    model = small_focsam()
    gammas = []

    def twenty_extra_clicks(gamma):
        gammas.append(gamma)
        return 20

    model.click_sampler.num_extra_clicks = twenty_extra_clicks
    batch = [
        training_sample('coco', 0.6),
        training_sample('lvis', 0.9),
        training_sample('coco', 0.6),
        training_sample(None, 0.6)
    ]
    draws = model.draw_simulations(batch)
    assert gammas == [0.6, 0.9, 0.6]  # coco, lvis, no source
    assert draws[2] is draws[0]
    assert len({id(d) for d in draws}) == 3
    # P(r) ~ g^r over 0..20: mean r is 1.5 for g = 0.6 (COCO and the
    # default), 0.54 for LVIS's 0.35.
    lvis = [
        model.draw_simulations(batch[1:2])[0].refine_step for _ in range(2000)
    ]
    coco = [
        model.draw_simulations(batch[:1])[0].refine_step for _ in range(2000)
    ]
    assert np.mean(lvis) == pytest.approx(0.538, abs=0.06)
    assert np.mean(coco) == pytest.approx(1.5, abs=0.1)


def test_refine_gamma_of_lvis_is_0_35_in_the_training_configs():
    for arch in ('b', 'l', 'h'):
        cfg = Config.fromfile(
            str(CONFIG_DIR /
                f'focsam/focsam_vit-{arch}_4xb4-160k_coco-lvis.py'))
        assert cfg.model.train_cfg.refine_gamma == 0.6
        assert cfg.model.train_cfg.refine_gamma_by_source == dict(lvis=0.35)


def test_training_settings_are_checked():
    with pytest.raises(ValueError, match=r"refine_gamma_by_source\['lvis'\]"):
        small_focsam(train_cfg=dict(refine_gamma_by_source=dict(lvis=1.5)))
    with pytest.raises(ValueError, match='losses.encoder'):
        small_focsam(losses=dict(encoder=dict(type='PrototypeSimilarityLoss')))
    with pytest.raises(ValueError, match='box_alone_loss'):
        small_focsam(train_cfg=dict(box_alone_loss=True))
