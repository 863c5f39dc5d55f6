# Copyright (c) samref contributors. All rights reserved.
import cv2
import numpy as np
import pytest
from scipy import ndimage

from samref.evaluation import (Click, ClickSimulator, object_box,
                               padded_distance)


def test_padded_distance_counts_the_image_border():
    region = np.ones((5, 9), dtype=bool)
    dist = padded_distance(region)
    # Row 2 is 3 pixels from the (padded) top and bottom borders.
    assert dist[2, 4] == pytest.approx(3.0)
    assert dist[0, 4] == pytest.approx(1.0)
    assert dist[2, 0] == pytest.approx(1.0)
    assert (padded_distance(~region) == 0).all()


@pytest.fixture
def single_threaded_opencv():
    """OpenCV as mmengine's runner leaves it in the main process."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(0)
    yield
    cv2.setNumThreads(threads)


def test_padded_distance_is_exact_on_every_call(single_threaded_opencv):
    # OpenCV's own square roots differ in the last bit between calls, which
    # broke the row-major tie rule differently on every run.
    region = np.zeros((256, 256), dtype=np.uint8)
    cv2.circle(region, (120, 130), 60, 1, -1)
    cv2.rectangle(region, (10, 10), (90, 50), 1, -1)
    exact = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    for _ in range(50):
        dist = padded_distance(region.astype(bool))
        assert dist.dtype == np.float32
        np.testing.assert_array_equal(dist, exact.astype(np.float32))


def test_padded_distance_of_the_bounding_box_is_that_of_the_map():
    """Only the region's box is transformed; every distance equals scipy's
    exact transform of the whole padded map, for regions anywhere (at the
    border, in pieces, a single pixel, empty)."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        region = np.zeros((40, 56), dtype=np.uint8)
        for _ in range(rng.integers(0, 4)):
            x, y = rng.integers(-5, 60), rng.integers(-5, 45)
            cv2.circle(region, (int(x), int(y)), int(rng.integers(0, 12)), 1,
                       -1)
        exact = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        np.testing.assert_array_equal(
            padded_distance(region.astype(bool)), exact.astype(np.float32))


def test_first_click_at_maximal_distance_with_row_major_tie_break():
    gt = np.ones((5, 9), dtype=np.int8)  # the object fills the image
    sim = ClickSimulator(gt)
    # Columns 2..6 of row 2 all lie at distance 3: the first one wins.
    assert sim.next_click(np.zeros((5, 9), bool)) == Click(2, 2, True)


def test_click_goes_to_the_centre_of_the_larger_error():
    gt = np.zeros((12, 12), dtype=np.int8)
    gt[1:10, 1:10] = 1  # 9 x 9 object, centre (5, 5)
    pred = np.zeros((12, 12), dtype=bool)
    pred[1:10, 1:3] = True  # covers the object's left columns
    pred[10:12, 10:12] = True  # a 2 x 2 false positive in the corner
    click = ClickSimulator(gt).next_click(pred)
    # FN = rows 1..9, columns 3..9; distance 4 at column 6 of rows 4..6,
    # the first of which wins.
    assert click == Click(6, 4, True)


def test_tie_between_fn_and_fp_gives_a_negative_click():
    gt = np.zeros((5, 11), dtype=np.int8)
    gt[1:4, 1:4] = 1  # 3 x 3 object, nothing predicted there
    pred = np.zeros((5, 11), dtype=bool)
    pred[1:4, 6:9] = True  # 3 x 3 false positive: same max distance, 2
    click = ClickSimulator(gt).next_click(pred)
    assert click == Click(7, 2, False)


def test_strictly_larger_fn_gives_a_positive_click():
    gt = np.zeros((7, 14), dtype=np.int8)
    gt[1:6, 1:6] = 1  # 5 x 5: max distance 3
    pred = np.zeros((7, 14), dtype=bool)
    pred[1:4, 8:11] = True  # 3 x 3: max distance 2
    assert ClickSimulator(gt).next_click(pred) == Click(3, 3, True)


def test_ignore_pixels_are_never_clicked():
    gt = np.ones((9, 9), dtype=np.int8)
    gt[2:7, 2:7] = -1  # the centre, farthest from the border, is ignored
    sim = ClickSimulator(gt)
    click = sim.next_click(np.zeros((9, 9), bool))
    assert gt[click.y, click.x] == 1
    # FN is the 2-pixel ring around the ignored square (ignored pixels are
    # not part of it): its farthest pixels are the inner corners, sqrt(2)
    # from the square; the first of them in row-major order wins.
    assert padded_distance(gt == 1).max() == pytest.approx(2**0.5)
    assert (click.x, click.y) == (1, 1)


def test_random_interactions_never_click_ignore_or_twice():
    rng = np.random.default_rng(0)
    for _ in range(5):
        gt = (rng.random((20, 24)) > 0.5).astype(np.int8)
        gt[rng.random((20, 24)) > 0.8] = -1
        sim = ClickSimulator(gt)
        pred = rng.random((20, 24)) > 0.5
        seen = set()
        for _ in range(20):
            click = sim.next_click(pred)  # the prediction never improves
            assert gt[click.y, click.x] != -1
            assert (click.x, click.y) not in seen
            assert gt[click.y, click.x] == int(click.is_positive)
            seen.add((click.x, click.y))


def test_perfect_prediction_gets_a_negative_click_at_the_origin():
    gt = np.zeros((6, 7), dtype=np.int8)
    gt[0:3, 0:4] = 1  # (0, 0) lies on the object: the click is still there
    sim = ClickSimulator(gt)
    assert sim.next_click(gt == 1) == Click(0, 0, False)
    assert sim.next_click(gt == 1) == Click(0, 0, False)  # every time
    assert sim.clicks == [Click(0, 0, False)] * 2


def test_perfect_prediction_after_real_clicks():
    gt = np.zeros((9, 9), dtype=np.int8)
    gt[2:7, 2:7] = 1
    sim = ClickSimulator(gt)
    assert sim.next_click(np.zeros((9, 9), bool)) == Click(4, 4, True)
    assert sim.next_click(gt == 1) == Click(0, 0, False)
    # Errors again after the perfect mask: the protocol resumes as usual.
    pred = gt == 1
    pred[6, 2:7] = False
    assert sim.next_click(pred) == Click(2, 6, True)


def test_error_only_on_ignore_pixels_counts_as_no_error():
    gt = np.zeros((4, 5), dtype=np.int8)
    gt[1:3, 1:3] = 1
    gt[1:3, 4] = -1
    gt[3, :] = -1
    pred = gt == 1
    pred[1:3, 4] = True  # wrong only on ignored pixels
    pred[1, 1] = False
    gt[1, 1] = -1  # ... and an ignored object pixel is missed
    sim = ClickSimulator(gt)
    assert sim.next_click(pred) == Click(0, 0, False)
    assert sim.next_click(pred) == Click(0, 0, False)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match='H x W'):
        ClickSimulator(np.zeros((2, 2, 1), np.int8))
    with pytest.raises(ValueError, match='does not match'):
        ClickSimulator(np.zeros((2, 2),
                                np.int8)).next_click(np.zeros((3, 2), bool))


def test_simulation_is_deterministic():
    rng = np.random.default_rng(1)
    gt = (rng.random((30, 30)) > 0.4).astype(np.int8)
    preds = [rng.random((30, 30)) > 0.5 for _ in range(5)]
    runs = []
    for _ in range(2):
        sim = ClickSimulator(gt)
        runs.append([sim.next_click(p) for p in preds])
    assert runs[0] == runs[1]


def test_object_box_is_on_the_pixel_edges():
    gt = np.zeros((12, 20), np.int8)
    gt[3:7, 5:16] = 1
    gt[0, :] = -1  # ignored pixels are not the object
    assert object_box(gt) == (5, 3, 16, 7)
    gt[11, 19] = 1
    assert object_box(gt) == (5, 3, 20, 12)
    with pytest.raises(ValueError, match='no object pixel'):
        object_box(np.zeros((3, 3), np.int8))
