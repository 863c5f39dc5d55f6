# Copyright (c) samref contributors. All rights reserved.
"""Mixed precision (``--amp``): every model trains under autocast.

CUDA's float16 autocast cannot run here; the CPU's bfloat16 autocast runs
the same code paths (which operators change precision differs, so where a
float16 failure depends on a CUDA-only precision choice, the test makes
it happen explicitly).
"""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from samref.apis import padded_input, synthetic_object
from samref.models.heads.focsam_refiner import DynamicWindowBlock
from samref.models.utils.deform_conv import ModulatedDeformConv3x3
from testing_utils import build_from_config

AUTOCAST = dict(device_type='cpu', dtype=torch.bfloat16)


def training_batch(model, count: int = 2) -> dict:
    inputs, samples = [], []
    for seed in range(count):
        inputs.append(padded_input(model, seed)[0])
        gt = synthetic_object(model.input_size, seed)
        gt[gt < 0] = 0
        sample = SegDataSample(metainfo=dict(click_gamma=0.6))
        sample.gt_sem_seg = PixelData(
            data=torch.from_numpy(gt.astype(np.uint8))[None])
        samples.append(sample)
    return dict(inputs=torch.stack(inputs), data_samples=samples)


@pytest.mark.parametrize('config,trained',
                         [('demo/sam_tiny_256_stage1.py', 'mask_decoder'),
                          ('demo/samref_tiny_256_stage2.py', 'global_refiner'),
                          ('focsam/focsam_vit-tiny_256_shapes.py', 'refiner')])
def test_models_train_under_autocast(config, trained):
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_from_config(config).train()
    model.click_sampler.max_extra_clicks = 2  # a short simulation
    batch = training_batch(model)
    with torch.autocast(**AUTOCAST):
        losses = model(**batch, mode='loss')
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [
        p.grad for p in getattr(model, trained).parameters()
        if p.grad is not None
    ]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_refiners_train_in_the_callers_precision():
    """Under the optimizer wrapper's autocast the refiners (stage 2's only
    trainable part) compute in the lower precision too; at inference with
    ``refiner_dtype='bfloat16'`` they autocast on their own."""
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_from_config('demo/samref_tiny_256_stage2.py').train()
    dtypes = []
    conv = model.global_refiner.prompt_fusion
    conv.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    with torch.autocast(**AUTOCAST):
        model(**training_batch(model, 1), mode='loss')
    assert dtypes and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    model(**training_batch(model, 1), mode='loss')  # no autocast: float32
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    model.refiner_dtype = 'bfloat16'
    model.eval()
    with torch.no_grad():
        features = model.encode_image(training_batch(model, 1)['inputs'])
        model.interact(features, torch.tensor([[[128., 128.]]]),
                       torch.tensor([[1]]))
    assert set(dtypes) == {torch.bfloat16}


def test_refiner_heads_compute_in_float32_under_autocast():
    """The refiners' last convolutions (GlobalDiff's reduction and error /
    detail head, PatchDiff's two heads) take float32 features under
    autocast: in bfloat16 their logits near 0 flipped about twice as many
    mask pixels against float32 on the demo's shapes."""
    torch.manual_seed(0)
    np.random.seed(0)
    # PatchDiff at every click, not only where the random selector asks.
    model = build_from_config(
        'demo/samref_tiny_256_stage2.py',
        model=dict(use_selector=False)).eval()
    model.refiner_dtype = 'bfloat16'
    heads = dict(
        reduce=model.global_refiner.reduce.conv,
        error_detail=model.global_refiner.error_detail,
        error_head=model.patch_refiner.error_head[-1],
        detail_head=model.patch_refiner.detail_head[-1],
        blocks=model.global_refiner.blocks[-1].conv2)
    dtypes = {}
    for name, module in heads.items():
        module.register_forward_hook(
            lambda m, args, out, name=name: dtypes.setdefault(name, set(
            )).update({args[0].dtype, out.dtype}))
    with torch.no_grad():
        features = model.encode_image(training_batch(model, 1)['inputs'])
        first = model.interact(features, torch.tensor([[[128., 128.]]]),
                               torch.tensor([[1]]))
        model.interact(features, torch.tensor([[[128., 128.], [90., 90.]]]),
                       torch.tensor([[1, 1]]), first)
    assert dtypes.pop('blocks') == {torch.bfloat16}
    assert dtypes == {name: {torch.float32} for name in dtypes}
    assert set(dtypes) == {
        'reduce', 'error_detail', 'error_head', 'detail_head'
    }


def test_window_update_in_another_precision_than_its_window():
    """Under CUDA's float16 autocast the window update comes out in
    float32 (its norms run in float32) while the windows are float16:
    ``index_copy`` of the block must take it."""
    torch.manual_seed(0)
    block = DynamicWindowBlock(32, 2, 2.0, 4)
    update = block.window_update.forward
    block.window_update.forward = lambda *args: update(*args).float()
    x = torch.randn(1, 32, 8, 8).to(torch.bfloat16)
    token = torch.randn(1, 1, 32).to(torch.bfloat16)
    focus = torch.zeros(1, 1, 8, 8)
    focus[..., :4, :4] = 1
    with torch.autocast(**AUTOCAST):
        out, new_token = block(x, token, focus)
    assert out.dtype == torch.bfloat16 and new_token.dtype == torch.bfloat16
    assert not torch.equal(out[..., :4, :4], x[..., :4, :4])
    assert torch.equal(out[..., 4:, 4:], x[..., 4:, 4:])


def test_deform_conv_runs_in_bfloat16():
    """mmcv's deformable convolution has no bfloat16 kernel; ours is made of
    torch operators that autocast handles."""
    torch.manual_seed(0)
    conv = ModulatedDeformConv3x3(8, 4)
    with torch.no_grad():
        conv.conv_offset.weight.normal_(0, 0.1)
    x = torch.randn(2, 8, 10, 10)
    with torch.autocast(**AUTOCAST):
        low = conv(x)
    torch.testing.assert_close(low.float(), conv(x), atol=0.05, rtol=0.05)
