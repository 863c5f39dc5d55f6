# Copyright (c) samref contributors. All rights reserved.

import pytest

from samref.apis import init_model
from testing_utils import CONFIG_DIR, load_script


def load_get_flops():
    return load_script('tools/analysis_tools/get_flops.py')


def test_flops_per_stage_of_sam_and_samref():
    tool = load_get_flops()
    counts = {}
    for name in ('sam/sam_vit-tiny.py', 'samref/samref_vit-tiny.py'):
        model = init_model(str(CONFIG_DIR / name), None, 'cpu')
        model.requires_grad_(False)
        counts[name] = tool.count_interaction(model, num_clicks=2)
    sam = counts['sam/sam_vit-tiny.py']
    samref = counts['samref/samref_vit-tiny.py']
    # The same encoder and decoder cost the same in both models.
    assert sam['encode']['image_encoder'] == \
        samref['encode']['image_encoder'] > 0
    for sam_click, samref_click in zip(sam['clicks'], samref['clicks']):
        assert sam_click['mask_decoder'] == samref_click['mask_decoder'] > 0
        assert 'global_refiner' not in sam_click
        # GlobalDiff's two 32-channel ResBasicBlocks, four 3x3
        # convolutions at 256 x 256, its 3x3 prompt fusion (3 -> 32) and its
        # 1x1 heads (32 -> 16 -> 2), 2 FLOPs a multiply-add; the image fills
        # the input, so all of it counts.
        per_pixel = 4 * 32 * 32 * 9 + 3 * 32 * 9 + 32 * 16 + 16 * 2
        assert samref_click['global_refiner'] == pytest.approx(
            2 * per_pixel * 256 * 256, rel=0.01)
    # The click-independent part of GlobalDiff is counted with the image.
    assert samref['encode']['global_refiner'] > 0


def test_get_flops_prints_one_row_per_model(capsys):
    sam = str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
    rows = load_get_flops().main([sam, sam, '--clicks', '1'])
    assert len(rows) == 3 and rows[1][1:] == rows[2][1:]
    assert 'image_encoder' in rows[1][2] and 'mask_decoder' in rows[1][4]
    assert 'GFLOPs' in capsys.readouterr().out
