# Copyright (c) samref contributors. All rights reserved.
import numpy as np
import pytest

from samref.visualization import (draw_interaction, draw_panel_grid,
                                  pick_mask_color)
from samref.visualization.interaction_drawer import (BOX_COLOR, MASK_PALETTE,
                                                     NEGATIVE_COLOR,
                                                     POSITIVE_COLOR)


@pytest.fixture
def grey():
    return np.full((120, 160, 3), 128, dtype=np.uint8)


def close_to(pixel, color, tol=40):
    return np.abs(pixel.astype(int) - np.array(color)).max() <= tol


def test_mask_is_painted_only_inside(grey):
    mask = np.zeros(grey.shape[:2], bool)
    mask[30:90, 40:120] = True
    color = (30, 144, 255)
    panel = draw_interaction(grey, mask, mask_color=color)
    assert panel.shape == grey.shape and panel.dtype == np.uint8
    inside = panel[60, 80].astype(int)
    # half-transparent fill: between the picture and the mask colour
    assert close_to(inside, (np.array(color) + 128) / 2, tol=20)
    assert (panel[5:20, 5:30] == 128).all()  # far outside: untouched
    assert not np.array_equal(panel, grey)


def test_clicks_box_and_caption(grey):
    clicks = [(30, 30, True), (130, 90, False)]
    panel = draw_interaction(grey, None, clicks, box=(60, 20, 140, 100))
    assert close_to(panel[30, 30], POSITIVE_COLOR)
    assert close_to(panel[90, 130], NEGATIVE_COLOR)
    assert close_to(panel[60, 60], BOX_COLOR, tol=60)  # left edge
    assert (panel[60, 100] == 128).all()  # inside the box: untouched
    captioned = draw_interaction(grey, caption='click 1  IoU 0.5')
    assert not np.array_equal(captioned[:20, :60], grey[:20, :60])
    assert np.array_equal(captioned[60:], grey[60:])


def test_mask_colour_reads_on_the_picture():
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[..., 2] = 255
    assert pick_mask_color(blue) != (30, 144, 255)
    orange = np.zeros((40, 40, 3), np.uint8)
    orange[:] = (255, 140, 0)
    region = np.zeros((40, 40), bool)
    region[:10] = True
    color = pick_mask_color(orange, region)
    assert color in MASK_PALETTE and color != (255, 140, 0)


def test_bad_input(grey):
    with pytest.raises(ValueError, match='does not match'):
        draw_interaction(grey, np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match='uint8'):
        draw_interaction(grey.astype(np.float32))
    with pytest.raises(ValueError, match='empty'):
        draw_interaction(grey, box=(50, 50, 10, 10))
    with pytest.raises(ValueError, match='row titles'):
        draw_panel_grid([[grey]], row_titles=['a', 'b'])
    with pytest.raises(ValueError, match='at least one panel'):
        draw_panel_grid([[]])


def test_grid_layout(grey):
    small = np.zeros((60, 80, 3), np.uint8)
    grid = draw_panel_grid([[grey, small, grey], [small]], gap=4)
    assert grid.shape == (2 * (120 + 8), 3 * 160 + 4 * 4, 3)
    assert np.array_equal(grid[4:124, 4:164], grey)
    assert np.array_equal(grid[4:64, 168:248], small)
    assert (grid[64:124, 168:328] == 255).all()  # padding of the small cell
    titled = draw_panel_grid([[grey], [grey]], row_titles=['SAM', 'SAM-REF'])
    assert titled.shape[0] == 2 * (120 + 8) + 2 * 24
    assert (titled[:24] < 255).any()  # the title text


def test_click_progress_is_scaled_with_its_window():
    from samref.visualization import draw_click_progress
    image = np.full((600, 960, 3), 128, np.uint8)
    gt = np.zeros((600, 960), np.int8)
    gt[100:500, 200:700] = 1
    gt[99] = -1
    clicks = [(450, 300, True), (900, 50, False)]
    steps = [
        dict(click=1, mask=gt == 1, iou=1.0),
        dict(click=2, mask=gt == 1, iou=1.0, box=(400, 0, 960, 300)),
    ]
    picture = draw_click_progress(image, gt, steps, clicks, 'obj 0')
    # scaled by 0.5 to 480 wide: three panels, a title strip
    assert picture.shape == (24 + 300 + 8, 3 * 480 + 4 * 4, 3)
    second = picture[24 + 4:24 + 304, 4 + 2 * 484:4 + 2 * 484 + 480]
    assert close_to(second[25, 450], NEGATIVE_COLOR)  # click 2 at half
    assert close_to(second[75, 200], BOX_COLOR, tol=60)  # window's left
    first = picture[24 + 4:24 + 304, 4 + 484:4 + 484 + 480]
    assert (first[25, 450] == 128).all()  # click 2 not yet in panel 1
    with pytest.raises(ValueError, match='ground truth'):
        draw_click_progress(image, gt[:10], steps, clicks)


def test_box_prompt_is_a_solid_rectangle(grey):
    panel = draw_interaction(grey, None, prompt_box=(40, 20, 120, 100))
    assert close_to(panel[60, 40], POSITIVE_COLOR)  # left edge
    assert close_to(panel[20, 80], POSITIVE_COLOR)  # top edge
    assert (panel[60, 80] == 128).all()  # inside: untouched
    with pytest.raises(ValueError, match='empty'):
        draw_interaction(grey, None, prompt_box=(40, 20, 30, 100))


def test_click_progress_after_a_box_draws_one_click_less():
    from samref.visualization import draw_click_progress
    image = np.full((100, 160, 3), 128, np.uint8)
    gt = np.zeros((100, 160), np.int8)
    gt[20:80, 40:120] = 1
    clicks = [(60, 50, True)]
    steps = [
        dict(click=1, mask=gt == 1, iou=1.0),
        dict(click=2, mask=gt == 1, iou=1.0)
    ]
    picture = draw_click_progress(
        image, gt, steps, clicks, prompt_box=(40, 20, 120, 80))
    panels = [picture[4:104, 4 + k * 164:4 + k * 164 + 160] for k in (1, 2)]
    for panel in panels:
        assert close_to(panel[50, 40], POSITIVE_COLOR)  # the box's edge
    # Interaction 1 is the box alone, interaction 2 the box and the click.
    assert not close_to(panels[0][50, 60], POSITIVE_COLOR)
    assert close_to(panels[1][50, 60], POSITIVE_COLOR)
