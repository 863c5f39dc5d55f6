# Copyright (c) samref contributors. All rights reserved.
import copy

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from samref.apis import InteractivePredictor, PromptPredictor, init_model
from testing_utils import CONFIG_DIR

POINTS = np.array([[50.5, 30.0], [90.0, 60.0]])
LABELS = np.array([1, 0])
BOX = np.array([10.0, 5.0, 80.0, 60.0])


def random_model(config: str, **options):
    """A model of ``configs/<config>`` with random weights, positional terms
    included (SAM starts them at zero)."""
    torch.manual_seed(0)
    model = init_model(CONFIG_DIR / config, cfg_options=options or None)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'pos' in name:
                param.normal_(0, 0.1)
    return model


@pytest.fixture(scope='module')
def sam():
    return random_model('demo/sam_tiny_256_stage1.py')


@pytest.fixture(scope='module')
def samref():
    return random_model('demo/samref_tiny_256_stage2.py')


@pytest.fixture(scope='module')
def focsam():
    return random_model('focsam/focsam_vit-tiny_256_shapes.py')


@pytest.fixture(scope='module')
def picture():
    # Odd, non-square size: resize rounding and padding both matter.
    return np.random.default_rng(0).integers(
        0, 256, (75, 113, 3), dtype=np.uint8)


def reference(model, picture) -> SamPredictor:
    """segment_anything's predictor around the model's SAM modules."""
    predictor = SamPredictor(
        Sam(model.image_encoder, model.prompt_encoder,
            model.mask_decoder).eval())
    predictor.set_image(picture)
    return predictor


def ours(model, picture, image_format='RGB') -> PromptPredictor:
    predictor = PromptPredictor(model)
    predictor.set_image(picture, image_format)
    return predictor


def assert_same_outputs(actual, expected, return_logits=False):
    masks, ious, low_res = actual
    assert masks.dtype == (np.float32 if return_logits else bool)
    if return_logits:
        np.testing.assert_allclose(masks, expected[0], rtol=0, atol=1e-5)
    else:
        np.testing.assert_array_equal(masks, expected[0])
    np.testing.assert_allclose(ious, expected[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(low_res, expected[2], rtol=0, atol=1e-5)


def test_sets_the_image_as_sam_predictor(sam, picture):
    expected = reference(sam, picture)
    predictor = ours(sam, picture)
    assert predictor.is_image_set
    assert predictor.original_size == expected.original_size == (75, 113)
    assert predictor.input_size == expected.input_size == (170, 256)
    assert predictor.device == torch.device('cpu')
    torch.testing.assert_close(
        predictor.get_image_embedding(),
        expected.get_image_embedding(),
        rtol=0,
        atol=1e-6)
    assert predictor.features is predictor.get_image_embedding()


PROMPTS = {
    'points':
    dict(point_coords=POINTS, point_labels=LABELS),
    'one point, one mask':
    dict(
        point_coords=POINTS[:1],
        point_labels=LABELS[:1],
        multimask_output=False),
    'box':
    dict(box=BOX),
    'box and points':
    dict(
        point_coords=POINTS,
        point_labels=LABELS,
        box=BOX[None],
        multimask_output=False),
    'points, logits':
    dict(point_coords=POINTS, point_labels=LABELS, return_logits=True),
    'box, logits':
    dict(box=BOX, multimask_output=False, return_logits=True),
}


@pytest.mark.parametrize('prompts', PROMPTS.values(), ids=list(PROMPTS))
def test_predict_matches_sam_predictor(sam, picture, prompts):
    actual = ours(sam, picture).predict(**prompts)
    expected = reference(sam, picture).predict(**prompts)
    count = 3 if prompts.get('multimask_output', True) else 1
    assert actual[0].shape == (count, 75, 113)
    assert actual[1].shape == (count, )
    assert actual[2].shape == (count, 128, 128)
    assert_same_outputs(actual, expected, prompts.get('return_logits'))


def test_mask_input_matches_sam_predictor(sam, picture):
    predictor, expected = ours(sam, picture), reference(sam, picture)
    _, _, low_res = expected.predict(POINTS[:1], LABELS[:1])
    # The mask prompt changes the masks; both take it the same way.
    without = expected.predict(
        POINTS, LABELS, multimask_output=False, return_logits=True)
    with_mask = expected.predict(
        POINTS,
        LABELS,
        mask_input=low_res[:1],
        multimask_output=False,
        return_logits=True)
    assert not np.allclose(with_mask[0], without[0], atol=1e-3)
    assert_same_outputs(
        predictor.predict(
            POINTS,
            LABELS,
            mask_input=low_res[:1],
            multimask_output=False,
            return_logits=True),
        with_mask,
        return_logits=True)


def test_predict_torch_batches_boxes_as_sam_predictor(sam, picture):
    predictor, expected = ours(sam, picture), reference(sam, picture)
    boxes = torch.tensor([[10.0, 5.0, 80.0, 60.0], [40.0, 20.0, 110.0, 74.0]])
    transformed = predictor.transform.apply_boxes_torch(
        boxes, predictor.original_size)
    actual = predictor.predict_torch(
        None, None, boxes=transformed, multimask_output=False)
    wanted = expected.predict_torch(
        None, None, boxes=transformed, multimask_output=False)
    assert actual[0].shape == (2, 1, 75, 113)
    assert not torch.equal(actual[0][0], actual[0][1])
    torch.testing.assert_close(actual[0], wanted[0])
    torch.testing.assert_close(actual[1], wanted[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(actual[2], wanted[2], rtol=0, atol=1e-5)


def test_bgr_images_are_flipped(sam, picture):
    rgb = ours(sam, picture)
    bgr = ours(sam, np.ascontiguousarray(picture[..., ::-1]), 'BGR')
    torch.testing.assert_close(bgr.get_image_embedding(),
                               rgb.get_image_embedding())
    assert_same_outputs(
        bgr.predict(POINTS, LABELS), rgb.predict(POINTS, LABELS))
    # The default is RGB: the BGR picture read as RGB is another image.
    wrong = ours(sam, np.ascontiguousarray(picture[..., ::-1]))
    assert not torch.allclose(wrong.get_image_embedding(),
                              rgb.get_image_embedding())


def test_reset_image_forgets_the_image(sam, picture):
    predictor = ours(sam, picture)
    predictor.reset_image()
    assert not predictor.is_image_set
    assert predictor.features is None and predictor.original_size is None
    with pytest.raises(RuntimeError, match='set_image'):
        predictor.predict(POINTS, LABELS)
    with pytest.raises(RuntimeError, match='set_image'):
        predictor.get_image_embedding()


def test_set_torch_image_takes_the_resized_image(sam, picture):
    predictor = PromptPredictor(sam)
    resized = predictor.transform.apply_image(picture)
    predictor.set_torch_image(
        torch.as_tensor(resized).permute(2, 0, 1)[None], picture.shape[:2])
    torch.testing.assert_close(predictor.get_image_embedding(),
                               reference(sam, picture).features)


def test_samref_clicks_go_through_its_refiners(picture):
    # Without the selector PatchDiff refines every click after the first.
    samref = random_model('demo/samref_tiny_256_stage2.py',
                          **{'model.use_selector': False})
    predictor = ours(samref, picture)
    session = InteractivePredictor(samref)
    session.set_image(picture, channel_order='rgb')
    decoder = reference(samref, picture)
    previous, mask_input, sam_low_res = None, None, None
    for k in (1, 2):  # the first click, then one with the mask fed back
        masks, ious, low_res = predictor.predict(
            POINTS[:k],
            LABELS[:k],
            mask_input=mask_input,
            multimask_output=False)
        assert (masks.shape, ious.shape, low_res.shape) == \
            ((1, 75, 113), (1, ), (1, 128, 128))
        previous = session.predict(POINTS[:k], LABELS[:k], previous)
        np.testing.assert_array_equal(masks[0], previous.mask)
        assert predictor.last_interaction.branch == \
            previous.interaction.branch
        sam_masks, _, sam_low_res = decoder.predict(
            POINTS[:k],
            LABELS[:k],
            mask_input=sam_low_res,
            multimask_output=False)
        assert (masks != sam_masks).mean() > 0.01
        mask_input = low_res
    assert predictor.last_interaction.branch == ['patch']
    assert predictor.patch_window() == pytest.approx(previous.window)


def test_samref_takes_multimasks_through_sam(samref, picture):
    predictor, expected = ours(samref, picture), reference(samref, picture)
    predictor.predict(POINTS[:1], LABELS[:1], multimask_output=False)
    assert predictor.last_interaction is not None
    prompts = PROMPTS['points']
    assert_same_outputs(
        predictor.predict(**prompts), expected.predict(**prompts))
    assert predictor.last_interaction is None
    assert predictor.patch_window() is None


def test_samref_takes_boxes_through_its_refiners(samref, picture):
    predictor = ours(samref, picture)
    session = InteractivePredictor(samref)
    session.set_image(picture, channel_order='rgb')
    box = predictor.transform.apply_boxes(BOX, predictor.original_size)[0]
    scale = np.array(session.metainfo['scale_factor'] * 2)
    for prompts in (dict(box=BOX), PROMPTS['box and points']):
        masks, ious, low_res = predictor.predict(
            **dict(prompts, multimask_output=False))
        assert masks.shape == (1, 75, 113) and ious.shape == (1, )
        interaction = predictor.last_interaction
        assert interaction.global_refinement is not None
        clicks = [(x, y, bool(label)) for (x, y), label in zip(POINTS, LABELS)
                  ] if 'point_coords' in prompts else []
        # The session's box is in original pixels.
        expected = session.new_session().predict(clicks, None,
                                                 tuple(box / scale))
        np.testing.assert_array_equal(masks[0], expected.mask)


def test_samref_click_path_batches(samref, picture):
    predictor = ours(samref, picture)
    points = torch.as_tensor(
        predictor.transform.apply_coords(POINTS, predictor.original_size),
        dtype=torch.float32)[:, None]
    labels = torch.as_tensor(LABELS)[:, None]
    masks, ious, low_res = predictor.predict_torch(
        points, labels, multimask_output=False, return_logits=True)
    assert masks.shape == (2, 1, 75, 113)
    for k in range(2):
        single = predictor.predict(
            POINTS[k:k + 1],
            LABELS[k:k + 1],
            multimask_output=False,
            return_logits=True)
        np.testing.assert_allclose(masks[k].numpy(), single[0], atol=1e-4)
        np.testing.assert_allclose(ious[k].numpy(), single[1], atol=1e-5)
        np.testing.assert_allclose(low_res[k].numpy(), single[2], atol=1e-4)


def test_focsam_refines_at_its_second_click(focsam, picture):
    predictor = ours(focsam, picture)
    _, _, low_res = predictor.predict(
        POINTS[:1], LABELS[:1], multimask_output=False)
    assert predictor.last_interaction.branch == ['sam']
    predictor.predict(
        POINTS, LABELS, mask_input=low_res, multimask_output=False)
    assert predictor.last_interaction.branch == ['refine']
    assert predictor.last_interaction.state['refined'].tolist() == [True]


def test_click_path_reports_its_times(samref, picture):
    predictor = PromptPredictor(samref, time_stages=True)
    predictor.set_image(picture)
    predictor.predict(POINTS[:1], LABELS[:1], multimask_output=False)
    assert predictor.interact_time > 0
    assert {'sam',
            'global_diff'} <= set(predictor.last_interaction.stage_times)
    assert not samref.time_stages  # the model's setting is kept


def test_foreign_mask_input_is_the_previous_mask(samref, picture):
    predictor = ours(samref, picture)
    first = predictor.predict(POINTS[:1], LABELS[:1], multimask_output=False)
    state = predictor.last_interaction.state
    # Logits of another call: the previous mask without the model's state,
    # so the selector has no error area to compare with.
    other = first[2] + 1.0
    predictor.predict(POINTS, LABELS, mask_input=other, multimask_output=False)
    assert state and predictor.last_interaction.branch == ['global']


@pytest.mark.parametrize('prompts, message', [
    (dict(point_coords=POINTS), 'point_labels'),
    (dict(point_labels=LABELS), 'point_coords'),
    (dict(point_coords=POINTS[0],
          point_labels=LABELS[:1]), r'point_coords must be N x 2.*\(2,\)'),
    (dict(point_coords=POINTS,
          point_labels=LABELS[:1]), 'one label per point'),
    (dict(point_coords=POINTS, point_labels=np.array(
        [1, 2])), 'point_labels must be 0 or 1.*got 2'),
    (dict(point_coords=[[1.0, np.nan]],
          point_labels=[1]), 'point_coords holds values that are not finite'),
    (dict(box=BOX[:3]), r'box must be .*\(3,\)'),
    (dict(mask_input=np.zeros((128, 128))), r'mask_input must be 1 x h x w'),
    (dict(mask_input=np.zeros((1, 64, 64))),
     r'mask_input must be B x 1 x 128 x 128'),
])
def test_predict_names_the_bad_argument(sam, picture, prompts, message):
    with pytest.raises(ValueError, match=message):
        ours(sam, picture).predict(**prompts)


def test_predict_torch_and_images_refuse_bad_input(sam, picture):
    predictor = ours(sam, picture)
    with pytest.raises(
            ValueError, match='one batch size.*point_coords: 1'
            '.*boxes: 2'):
        predictor.predict_torch(
            torch.zeros(1, 1, 2), torch.ones(1, 1), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='-1, 0 or 1.*got 3'):
        predictor.predict_torch(torch.zeros(1, 1, 2), torch.full((1, 1), 3))
    with pytest.raises(
            ValueError, match="image_format must be 'RGB' or "
            "'BGR', got 'rgb'"):
        predictor.set_image(picture, 'rgb')
    with pytest.raises(ValueError, match='image must be an H x W x 3 uint8'):
        predictor.set_image(picture.astype(np.float32))
    with pytest.raises(ValueError, match='long side at the model input'):
        predictor.set_torch_image(torch.zeros(1, 3, 100, 100), (100, 100))
    with pytest.raises(TypeError, match='SAM-based'):
        PromptPredictor(torch.nn.Linear(2, 2))


@pytest.mark.cuda
def test_predicts_on_cuda_as_on_the_cpu(samref, picture):
    gpu = copy.deepcopy(samref).cuda()
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # the CPU's float32
    try:
        with torch.backends.cudnn.flags(allow_tf32=False):
            runs = []
            for model in (samref, gpu):
                predictor = ours(model, picture)
                first = predictor.predict(
                    POINTS[:1],
                    LABELS[:1],
                    multimask_output=False,
                    return_logits=True)
                second = predictor.predict(
                    POINTS,
                    LABELS,
                    mask_input=first[2],
                    multimask_output=False,
                    return_logits=True)
                box = predictor.predict(box=BOX, return_logits=True)
                runs.append(first + second + box)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
    assert predictor.get_image_embedding().is_cuda
    for on_cpu, on_gpu in zip(*runs):
        assert isinstance(on_gpu, np.ndarray)
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=2e-3, atol=2e-3)
