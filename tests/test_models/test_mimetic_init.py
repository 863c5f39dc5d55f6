# Copyright (c) samref contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
from segment_anything.modeling.image_encoder import Attention as EncoderAttn
from segment_anything.modeling.transformer import Attention as DecoderAttn

from samref.apis import init_model
from samref.models.utils import MimeticAttentionInit, tie_query_key
from testing_utils import CONFIG_DIR, build_from_config

SAM_TINY = CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'


def test_init_cfg_ties_every_attention_of_sam():
    torch.manual_seed(0)
    model = init_model(SAM_TINY)
    decoder = [m for m in model.modules() if isinstance(m, DecoderAttn)]
    encoder = [m for m in model.modules() if isinstance(m, EncoderAttn)]
    assert decoder and encoder
    assert not any(
        torch.equal(m.q_proj.weight, m.k_proj.weight) for m in decoder)
    model.init_cfg = dict(type='MimeticAttention', gain=2.0)
    query = decoder[0].q_proj.weight.clone()
    values = encoder[0].qkv.weight[-1].clone()
    model.init_weights()
    for m in decoder:
        assert torch.equal(m.q_proj.weight, m.k_proj.weight)
    torch.testing.assert_close(decoder[0].q_proj.weight, 2 * query)
    for m in encoder:
        dim = m.qkv.out_features // 3
        assert torch.equal(m.qkv.weight[:dim], m.qkv.weight[dim:2 * dim])
    assert torch.equal(encoder[0].qkv.weight[-1], values)  # values kept
    # A tied attention's scores are a positive semi-definite kernel: a
    # query scores its own key above any other key of the same norm.
    attn = decoder[0]
    x = torch.randn(16, attn.q_proj.in_features)
    x = x / x.norm(dim=1, keepdim=True)
    q = attn.q_proj(x) - attn.q_proj.bias
    k = attn.k_proj(x) - attn.k_proj.bias
    scores = q @ k.T
    assert (scores.diagonal() >= scores.max(dim=1).values - 1e-4).float() \
        .mean() > 0.9


def test_nothing_to_tie_is_an_error():
    init = MimeticAttentionInit()
    with pytest.raises(ValueError, match='no attention module'):
        init(nn.Sequential(nn.Linear(4, 4)))


def test_projections_of_other_shapes_are_refused():
    module = nn.Module()
    module.q_proj, module.k_proj = nn.Linear(8, 4), nn.Linear(6, 4)
    with pytest.raises(ValueError, match='cannot tie'):
        tie_query_key(module)
    assert not tie_query_key(nn.Linear(3, 3))


def test_demo_recipe_ties_the_decoder_only():
    torch.manual_seed(0)
    model = build_from_config('demo/sam_tiny_256_stage1.py')
    model.init_weights()
    assert all(
        torch.equal(m.q_proj.weight, m.k_proj.weight)
        for m in model.mask_decoder.modules() if isinstance(m, DecoderAttn))
    for m in model.image_encoder.modules():
        if isinstance(m, EncoderAttn):
            dim = m.qkv.out_features // 3
            assert not torch.equal(m.qkv.weight[:dim],
                                   m.qkv.weight[dim:2 * dim])
