# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmcv.cnn import build_norm_layer
from mmcv.ops import RoIAlign

from samref.models.segmentors.samref import paste_window
from samref.models.utils import (ChannelGroupNorm, RoICrop, box_prompt_map,
                                 click_disk_maps, select_patch_box)
from samref.models.utils.channel_group_norm import channel_norm_keeping_layout


def test_disks_are_drawn_at_the_click_with_the_radius():
    points = torch.tensor([[[5.0, 7.0], [12.0, 2.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, 0, -1]])
    box = torch.tensor([[0.0, 0.0, 16.0, 16.0]])  # one map pixel per input
    maps = click_disk_maps(points, labels, 16, box, radius=1.5)
    assert maps.shape == (1, 2, 16, 16)
    positive = maps[0, 0].nonzero().tolist()
    # Radius 1.5 covers the 3 x 3 neighbourhood (diagonals at sqrt(2)).
    assert sorted(positive) == [[y, x] for y in (6, 7, 8) for x in (4, 5, 6)]
    assert maps[0, 1].sum() == 9 and maps[0, 1, 2, 12] == 1
    assert maps[0, :, 0, 0].sum() == 0  # padding clicks are not drawn


def test_disks_follow_the_window_scale():
    # A 4x downscaled map: input pixel 9 (centre 9.5) -> map 9.5/4-0.5=1.875
    points = torch.tensor([[[9.0, 9.0]]])
    maps = click_disk_maps(points, torch.ones(1, 1), 8,
                           torch.tensor([[0.0, 0.0, 32.0, 32.0]]), 0.5)
    assert maps[0, 0].nonzero().tolist() == [[2, 2]]
    # A window starting at (8, 8): the same click is near its corner.
    maps = click_disk_maps(points, torch.ones(1, 1), 8,
                           torch.tensor([[8.0, 8.0, 16.0, 16.0]]), 0.5)
    assert maps[0, 0].nonzero().tolist() == [[1, 1]]


def test_patch_box_covers_the_changed_component_of_the_click():
    new = np.zeros((64, 64), bool)
    prev = np.zeros((64, 64), bool)
    new[10:20, 30:50] = True  # changed: 10 rows x 20 columns
    new[40:45, 5:10] = True  # another change, elsewhere
    box = select_patch_box(new, prev, (35.0, 12.0), (64, 64), 1.4, 4.0)
    # Centre (40, 15), size 28 x 14 after x1.4.
    assert box == pytest.approx((26.0, 8.0, 54.0, 22.0))


def test_patch_box_minimum_size_clipping_and_fallback():
    new = np.zeros((64, 64), bool)
    new[60:62, 60:62] = True  # a tiny change in the corner
    box = select_patch_box(new, new & False, (61.0, 61.0), (64, 48), 1.4, 16.0)
    # Grown to 16 x 16 and shifted inside the valid area, 64 rows x 48
    # columns.
    assert box == pytest.approx((32.0, 48.0, 48.0, 64.0))
    # The click is in no changed component: a min_size square around it.
    box = select_patch_box(new, new, (20.0, 30.0), (64, 64), 1.4, 16.0)
    assert box == pytest.approx((12.5, 22.5, 28.5, 38.5))


def test_paste_window_changes_only_pixels_inside_the_window():
    target = torch.zeros(1, 16, 16)
    patch = torch.arange(16.0).reshape(1, 4, 4).repeat_interleave(
        2, 1).repeat_interleave(2, 2)  # 8 x 8, constant 2 x 2 blocks
    # Window of 8 x 8 input pixels at (8, 4), map stride 2: map pixels
    # whose centres lie inside: columns 4..7, rows 2..5.
    paste_window(target, patch, [8.0, 4.0, 16.0, 12.0], 2)
    changed = (target[0] != 0).nonzero()
    assert changed[:, 0].unique().tolist() == [2, 3, 4, 5]
    assert changed[:, 1].unique().tolist() == [4, 5, 6, 7]
    # Map pixel (2, 4) samples the patch's top-left 2 x 2 block.
    assert target[0, 2, 4] == 0 and target[0, 2, 5] == 1
    assert target[0, 5, 7] == 15


@pytest.mark.parametrize('stride', [1, 4])
def test_paste_window_takes_the_pixels_whose_centres_are_inside(stride):
    """The window's pixels are found on the host (no device sync); they
    are those whose centres lie in the window, clipped to the map, also
    for windows on pixel centres and across the border."""
    rng = np.random.default_rng(0)
    size = 24
    for _ in range(200):
        x0, y0 = rng.uniform(-10, size * stride, 2).astype(np.float32)
        if rng.random() < 0.3:  # on a pixel centre
            x0 = np.float32((rng.integers(0, size) + 0.5) * stride)
        w, h = rng.uniform(1, 12 * stride, 2).astype(np.float32)
        box = [float(x0), float(y0), float(x0 + w), float(y0 + h)]
        target = torch.zeros(1, size, size)
        paste_window(target, torch.ones(1, 6, 6), box, stride)
        centres = (torch.arange(size) + 0.5) * stride
        inside_x = (centres >= box[0]) & (centres <= box[2])
        inside_y = (centres >= box[1]) & (centres <= box[3])
        expected = inside_y[:, None] & inside_x[None, :]
        assert torch.equal(target[0] != 0, expected), box


@pytest.mark.parametrize('scale', [1.0, 0.25])
def test_roi_crop_matches_mmcv_roi_align_on_cpu(scale):
    torch.manual_seed(0)
    maps = torch.randn(2, 5, 40,
                       48).contiguous(memory_format=torch.channels_last)
    rois = torch.tensor([
        [0, 0.0, 0.0, 192.0, 160.0],  # the whole map at scale 1/4
        [1, 10.3, 7.9, 150.2, 90.0],  # larger than the crop: 2-3 samples
        [0, 30.0, 31.0, 36.5, 34.0],  # smaller: upsampled
        [1, -6.0, -3.0, 20.0, 250.0],  # beyond the border: clamp, zeros
        # Edges within a hair of the limits where samples start to be
        # zeroed (a pixel beyond the map, -1 and 48 or 40 at scale 1/4), on
        # either side of them.
        [0, -2.0, -2.0, 193.99, 161.99],
        [1, -1.9996, -1.9996, 193.9996, 161.9996],
        [0, -1.9, -1.9, 194.0, 162.0],
    ]) * torch.tensor([1, scale, scale, scale, scale])
    # mmcv's kernel needs NCHW memory: given the channels-last maps as they
    # are it reads the wrong values.
    roi_align = RoIAlign((8, 12), spatial_scale=scale, aligned=True)
    expected = roi_align(maps.contiguous(), rois)
    assert not torch.allclose(roi_align(maps, rois), expected)
    crops = RoICrop((8, 12), spatial_scale=scale)(maps, rois)
    assert crops.shape == (7, 5, 8, 12)
    torch.testing.assert_close(crops, expected, atol=1e-5, rtol=1e-5)
    # One box: its crop alone.
    torch.testing.assert_close(
        RoICrop((8, 12), spatial_scale=scale)(maps, rois[1:2]), expected[1:2])


def test_channel_group_norm_is_instance_norm_built_by_mmcv():
    name, norm = build_norm_layer(dict(type='ChannelGroupNorm'), 6, postfix=1)
    assert name == 'in1' and isinstance(norm, ChannelGroupNorm)
    torch.manual_seed(0)
    norm.weight.data.normal_()
    norm.bias.data.normal_()
    reference = torch.nn.InstanceNorm2d(6, affine=True)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 6, 9,
                    7).contiguous(memory_format=torch.channels_last) * 3 + 1
    out = norm(x)
    torch.testing.assert_close(out, reference(x), rtol=1e-4, atol=1e-4)
    # Each sample by its own statistics, in eval mode too.
    torch.testing.assert_close(norm.eval()(x[1:]), out[1:])
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_channel_norm_off_the_cpu_keeps_the_layout(dtype):
    """Off the CPU (where CUDA's group norm would copy a channels-last
    input to NCHW and back) the norm is computed in the input's layout:
    same values, channels-last out, the input's precision."""
    torch.manual_seed(0)
    norm = ChannelGroupNorm(6)
    norm.weight.data.normal_()
    norm.bias.data.normal_()
    x = (torch.randn(2, 6, 9, 7) * 3 +
         1).to(dtype).contiguous(memory_format=torch.channels_last)
    out = channel_norm_keeping_layout(x, norm.weight, norm.bias, norm.eps)
    assert out.dtype == dtype
    assert out.is_contiguous(memory_format=torch.channels_last)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(
        out.float(), norm(x.float()), rtol=tolerance, atol=tolerance)
    # The module takes that path for a device other than the CPU (the meta
    # device stands in for a GPU here).
    meta = norm.to('meta')(x.to('meta'))
    assert meta.is_contiguous(memory_format=torch.channels_last)
    assert not torch.nn.GroupNorm(6, 6).to('meta')(x.to('meta')) \
        .is_contiguous(memory_format=torch.channels_last)


def test_box_prompt_map_fills_the_pixels_whose_centres_are_inside():
    whole = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    # Input pixels 2..5 by 0..2 (edges 2, 0, 6, 3), one map pixel each.
    maps = box_prompt_map(torch.tensor([[2.0, 0.0, 6.0, 3.0]]), 16, whole)
    assert maps.shape == (1, 1, 16, 16)
    assert sorted(maps[0, 0].nonzero().tolist()) == [[y, x] for y in range(3)
                                                     for x in range(2, 6)]
    # A 4x coarser map: pixel centres at 2, 6, 10 and 14 input pixels, the
    # box's edges included.
    maps = box_prompt_map(torch.tensor([[2.0, 0.0, 10.0, 3.0]]), 4, whole)
    assert maps[0, 0].tolist() == [[1.0, 1.0, 1.0, 0.0]] + [[0.0] * 4] * 3


def test_box_prompt_map_of_a_window_is_the_crop_of_the_whole_map():
    boxes = torch.tensor([[5.0, 9.0, 21.0, 14.0], [0.0, 0.0, 3.0, 32.0]])
    whole = box_prompt_map(boxes, 32,
                           torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2))
    window = torch.tensor([[4.0, 8.0, 20.0, 24.0]] * 2)
    crop = box_prompt_map(boxes, 16, window)
    torch.testing.assert_close(crop, whole[:, :, 8:24, 4:20])
    assert crop[0].sum() == 5 * 15 and crop[1].sum() == 0
