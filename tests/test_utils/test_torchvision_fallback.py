# Copyright (c) samref contributors. All rights reserved.
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from samref.utils import torchvision_fallback as fallback


def test_to_pil_image_matches_pil_for_arrays():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    image = fallback.to_pil_image(rgb)
    assert image.mode == 'RGB' and image.size == (5, 7)
    np.testing.assert_array_equal(np.asarray(image), rgb)
    grey = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    assert fallback.to_pil_image(grey).mode == 'L'
    rgba = rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    assert fallback.to_pil_image(rgba).mode == 'RGBA'


def test_to_pil_image_scales_float_tensors_like_torchvision():
    chw = torch.tensor([[[0.0, 0.5]], [[1.0, 0.999]], [[0.25, 0.1]]])
    pixels = np.asarray(fallback.to_pil_image(chw))
    # torchvision multiplies by 255 and truncates to uint8.
    np.testing.assert_array_equal(pixels, [[[0, 255, 63], [127, 254, 25]]])


def test_to_pil_image_rejects_bad_input():
    with pytest.raises(TypeError):
        fallback.to_pil_image([1, 2, 3])
    with pytest.raises(ValueError):
        fallback.to_pil_image(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(TypeError):
        fallback.to_pil_image(np.zeros((2, 2, 3), np.float32))


def test_resize_of_pil_image_is_pils_bilinear():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    ours = fallback.resize(fallback.to_pil_image(rgb), (768, 1024))
    expected = Image.fromarray(rgb).resize((1024, 768), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(expected))


def test_resize_int_size_matches_short_side():
    image = Image.new('RGB', (200, 100))
    assert fallback.resize(image, 50).size == (100, 50)
    tall = Image.new('RGB', (100, 300))
    assert fallback.resize(tall, [30]).size == (30, 90)


def test_resize_tensor_uses_antialiased_bilinear():
    tensor = torch.arange(64, dtype=torch.float32).reshape(1, 8, 8)
    out = fallback.resize(tensor, (4, 4))
    expected = torch.nn.functional.interpolate(
        tensor[None], (4, 4), mode='bilinear', antialias=True)[0]
    torch.testing.assert_close(out, expected)
    assert fallback.resize(tensor.to(torch.uint8), (4, 4)).dtype == \
        torch.uint8


def test_segment_anything_resize_longest_side_uses_pil_bilinear():
    from segment_anything.utils.transforms import ResizeLongestSide
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (301, 457, 3), dtype=np.uint8)
    resized = ResizeLongestSide(1024).apply_image(rgb)
    h, w = ResizeLongestSide.get_preprocess_shape(301, 457, 1024)
    assert resized.shape == (h, w, 3) == (674, 1024, 3)
    expected = Image.fromarray(rgb).resize((w, h), Image.BILINEAR)
    np.testing.assert_array_equal(resized, np.asarray(expected))


def test_box_area():
    boxes = torch.tensor([[0., 0., 2., 3.], [1., 1., 1., 5.], [2, 2, 7, 4]])
    torch.testing.assert_close(
        fallback.box_area(boxes), torch.tensor([6., 0., 10.]))


def test_nms_keeps_best_and_drops_strict_overlaps():
    boxes = torch.tensor([
        [0., 0., 10., 10.],  # 0
        [1., 0., 11., 10.],  # 1: IoU 9/11 with 0
        [20., 20., 30., 30.],  # 2: disjoint
        [0., 0., 10., 5.],  # 3: IoU exactly 0.5 with 0
    ])
    scores = torch.tensor([0.9, 0.95, 0.1, 0.5])
    # Box 1 (best) suppresses box 0; box 3 has IoU 3/7 with box 1.
    assert fallback.nms(boxes, scores, 0.5).tolist() == [1, 3, 2]
    # With box 1 gone, box 3's IoU with box 0 is exactly 0.5: not > 0.5.
    keep = fallback.nms(boxes[[0, 2, 3]], scores[[0, 2, 3]], 0.5)
    assert keep.tolist() == [0, 2, 1]
    assert fallback.nms(boxes[[0, 2, 3]], scores[[0, 2, 3]],
                        0.49).tolist() == [0, 1]


def test_batched_nms_never_suppresses_across_categories():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.],
                          [0., 0., 10., 10.]])
    scores = torch.tensor([0.3, 0.8, 0.5])
    idxs = torch.tensor([0, 1, 0])
    assert fallback.batched_nms(boxes, scores, idxs, 0.7).tolist() == [1, 2]
    empty = fallback.batched_nms(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
        0.5)
    assert empty.dtype == torch.int64 and empty.numel() == 0


def test_fallback_modules_are_scoped_to_the_block():
    sentinel = object()
    previous = sys.modules.get('torchvision.ops')
    sys.modules['torchvision.ops'] = sentinel
    try:
        with fallback.torchvision_fallback():
            from torchvision.ops.boxes import batched_nms
            from torchvision.transforms.functional import resize
            assert batched_nms is fallback.batched_nms
            assert resize is fallback.resize
        assert sys.modules['torchvision.ops'] is sentinel
    finally:
        if previous is None:
            del sys.modules['torchvision.ops']
        else:
            sys.modules['torchvision.ops'] = previous
    if not fallback.torchvision_available():
        assert 'torchvision' not in sys.modules


@pytest.mark.skipif(
    not fallback.torchvision_available(), reason='torchvision not installed')
def test_matches_real_torchvision():
    import torchvision.ops as ops
    import torchvision.transforms.functional as tvf
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        np.asarray(fallback.resize(fallback.to_pil_image(rgb), (30, 41))),
        np.asarray(tvf.resize(tvf.to_pil_image(rgb), (30, 41))))
    corners = torch.as_tensor(rng.uniform(0, 50, (40, 2)), dtype=torch.float)
    boxes = torch.cat([corners, corners + 5 + 20 * torch.rand(40, 2)], 1)
    scores, idxs = torch.rand(40), torch.randint(0, 3, (40, ))
    assert fallback.batched_nms(boxes, scores, idxs, 0.5).tolist() == \
        ops.batched_nms(boxes, scores, idxs, 0.5).tolist()
    torch.testing.assert_close(fallback.box_area(boxes), ops.box_area(boxes))


def test_automatic_mask_generator_runs_on_the_fallback(tiny_sam):
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.modeling import Sam
    sam = Sam(tiny_sam.image_encoder, tiny_sam.prompt_encoder,
              tiny_sam.mask_decoder).eval()
    generator = SamAutomaticMaskGenerator(
        sam,
        points_per_side=4,
        pred_iou_thresh=-100.0,
        stability_score_thresh=0.0,
        box_nms_thresh=0.7)
    rgb = np.random.default_rng(4).integers(0, 256, (64, 96, 3), np.uint8)
    masks = generator.generate(rgb)
    assert 0 < len(masks) <= 16 * 3
    boxes = torch.tensor([m['bbox'] for m in masks], dtype=torch.float)
    boxes[:, 2:] += boxes[:, :2]
    # After NMS no two kept masks' boxes overlap above the threshold.
    for i in range(len(boxes)):
        iou = fallback._box_iou(boxes[i], boxes[i + 1:])
        assert (iou <= 0.7 + 1e-6).all()
    assert all(m['segmentation'].shape == (64, 96) for m in masks)
