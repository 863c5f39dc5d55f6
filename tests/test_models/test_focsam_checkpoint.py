# Copyright (c) samref contributors. All rights reserved.
import re

import numpy as np
import pytest
import torch

from samref.apis import InteractivePredictor, init_model
from samref.models import FocSAMRefiner
from testing_utils import CONFIG_DIR, build_from_config, load_script

# FocSAM's names of our modules, written from the key table of its code
# (docs: ../shared/design/FOCSAM.md, section 2), independently of the
# converter's own table.
SAM_PARTS = [
    ('image_encoder.', 'backbone.'),
    ('prompt_encoder.pe_layer.', 'neck.pos_embed_layer.'),
    ('prompt_encoder.point_embeddings.', 'neck.point_embeds.'),
    ('prompt_encoder.', 'neck.'),
    ('mask_decoder.', 'decode_head.'),
]
REFINER_PARTS = [
    ('input_proj.', 'embed_proj.'),
    ('token_proj.', 'token_proj.'),
    ('token_update.norm_token.', 'img2cls.norm_q.'),
    ('token_update.norm_window.', 'img2cls.norm_kv.'),
    ('token_update.norm_mlp.', 'img2cls.norm.'),
    ('token_update.attn.out_proj.', 'img2cls.attn.proj.'),
    ('token_update.attn.', 'img2cls.attn.'),
    ('token_update.gamma_attn', 'img2cls.gamma1'),
    ('token_update.gamma_mlp', 'img2cls.gamma2'),
    ('token_update.mlp.', 'img2cls.mlp.'),
    ('window_update.token_proj.', 'cls2img.cls_proj.'),
    ('window_update.attn.out_proj.', 'cls2img.attn.proj.'),
    ('window_update.attn.', 'cls2img.attn.'),
    ('window_update.norm_attn.', 'cls2img.norm1.'),
    ('window_update.norm_conv.', 'cls2img.norm2.'),
    ('window_update.dyrelu.', 'cls2img.relu1.'),
    ('window_update.deform_conv.conv_offset.', 'cls2img.conv2.dcn_offset.'),
    ('window_update.deform_conv.weight', 'cls2img.conv2.dcn.weight'),
    ('window_update.gamma_attn', 'cls2img.gamma1'),
    ('window_update.gamma_conv', 'cls2img.gamma2'),
    ('coverage_scale.', 'cls_scale_proj.'),
]
# A 256 x 256 FocSAM with the tiny encoder and two refiner blocks.
SMALL_CONFIG = """
_base_ = ['{base}']
model = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(img_size=256),
    prompt_encoder=dict(
        image_embedding_size=(16, 16), input_image_size=(256, 256)),
    refiner=dict(depth=2, window_size=4))
"""


def focsam_name(key: str) -> str:
    if key.startswith('refiner.'):
        rest = key[len('refiner.'):]
        block = re.match(r'^(blocks\.\d+\.)(.+)$', rest)
        head, rest = (block.group(1), block.group(2)) if block else ('', rest)
        for ours, theirs in REFINER_PARTS:
            if rest.startswith(ours):
                return 'refine_head.' + head + theirs + rest[len(ours):]
        raise KeyError(key)
    for ours, theirs in SAM_PARTS:
        if key.startswith(ours):
            return theirs + key[len(ours):]
    raise KeyError(key)


def load_converter():
    return load_script('tools/model_converters/focsam2samref.py')


@pytest.fixture
def small(tmp_path):
    config = tmp_path / 'focsam_small.py'
    config.write_text(
        SMALL_CONFIG.format(base=CONFIG_DIR / 'focsam' / 'focsam_vit-tiny.py'))
    torch.manual_seed(0)
    model = init_model(config).eval()
    with torch.no_grad():  # no parameter left at its initial value
        for name, param in model.named_parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return config, model


def focsam_checkpoint(model, path, extra=None, drop=()):
    state = {
        focsam_name(k): v
        for k, v in model.state_dict().items() if k not in drop
    }
    state.update(extra or {})
    torch.save(dict(state_dict=state, meta=dict(iter=160000)), path)
    return state


def test_documented_layout_of_the_released_refiner():
    with torch.device('meta'):
        state = FocSAMRefiner().state_dict()
    theirs = {focsam_name('refiner.' + k): v.shape for k, v in state.items()}
    assert len(theirs) == 662
    shapes = {
        'refine_head.embed_proj.weight': (256, 256, 1, 1),
        'refine_head.blocks.0.img2cls.gamma1': (256, ),
        'refine_head.blocks.0.img2cls.mlp.0.weight': (1024, 256),
        'refine_head.blocks.3.cls2img.cls_proj.1.weight': (256, ),
        'refine_head.blocks.5.cls2img.norm2.bias': (256, ),
        'refine_head.blocks.0.cls2img.relu1.pixel_scale': (512, ),
        'refine_head.blocks.0.cls2img.relu1.pixel_mlp.0.weight': (256, 1),
        'refine_head.blocks.0.cls2img.relu1.channel_mlp.2.weight': (512, 256),
        'refine_head.blocks.7.cls2img.conv2.dcn_offset.weight':
        (27, 256, 3, 3),
        'refine_head.blocks.7.cls2img.conv2.dcn.weight': (256, 256, 3, 3),
        'refine_head.blocks.0.cls2img.gamma2': (1, 256, 1, 1),
        'refine_head.blocks.10.cls_scale_proj.weight': (1, 1),
    }
    for key, shape in shapes.items():
        assert tuple(theirs[key]) == shape, key
    assert 'refine_head.blocks.11.cls_scale_proj.weight' not in theirs
    assert 'refine_head.blocks.0.cls2img.conv2.dcn.bias' not in theirs


@torch.no_grad()
def test_converted_checkpoint_loads_strictly_and_predicts_the_same(
        small, tmp_path):
    config, model = small
    src, dst = tmp_path / 'iter_160000.pth', tmp_path / 'converted.pth'
    state = focsam_checkpoint(model, src)
    assert any(k.startswith('refine_head.blocks.1.cls2img') for k in state)
    count = load_converter().main(
        [str(src), str(dst), '--config',
         str(config)])
    assert count == len(model.state_dict())
    loaded = init_model(config, str(dst), strict=True)
    image = np.random.default_rng(0).integers(
        0, 256, (96, 128, 3), dtype=np.uint8)
    outputs = []
    for m in (model, loaded):
        predictor = InteractivePredictor(m)
        predictor.set_image(image)
        out = None
        for k in range(1, 4):
            out = predictor.predict([(60, 40), (20, 20), (100, 70)][:k],
                                    [1, 0, 1][:k], out)
        outputs.append(out)
    assert outputs[0].interaction.branch == ['sam']  # the third click
    converted, original = (out.interaction for out in outputs[::-1])
    torch.testing.assert_close(
        converted.state['image_embeddings'],
        original.state['image_embeddings'],
        rtol=0,
        atol=0)
    torch.testing.assert_close(
        converted.logits, original.logits, rtol=0, atol=0)


def test_every_unmapped_missing_and_misshapen_key_is_listed(small, tmp_path):
    config, model = small
    src, dst = tmp_path / 'bad.pth', tmp_path / 'converted.pth'
    focsam_checkpoint(
        model,
        src,
        extra={
            'refine_head.blocks.0.cls2img.relu2.weight': torch.ones(1),
            'auxiliary_head.conv.weight': torch.ones(1),
            'refine_head.token_proj.bias': torch.ones(7),
        },
        drop=('mask_decoder.iou_token.weight',
              'refiner.blocks.1.window_update.gamma_conv'))
    with pytest.raises(SystemExit) as error:
        load_converter().main([str(src), str(dst), '--config', str(config)])
    message = str(error.value)
    for key in ('refine_head.blocks.0.cls2img.relu2.weight',
                'auxiliary_head.conv.weight', 'mask_decoder.iou_token.weight',
                'refiner.blocks.1.window_update.gamma_conv',
                'refiner.token_proj.bias: checkpoint (7,)'):
        assert key in message
    assert not dst.exists()


def test_a_config_of_another_model_is_refused(tmp_path):
    model = build_from_config('sam/sam_vit-tiny.py')
    src = tmp_path / 'sam.pth'
    torch.save(model.state_dict(), src)
    with pytest.raises(SystemExit, match='not a FocSAM config'):
        load_converter().main([
            str(src),
            str(tmp_path / 'out.pth'), '--config',
            str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
        ])
