# Copyright (c) samref contributors. All rights reserved.

import cv2
import numpy as np
import pytest

from testing_utils import load_script


def load_demo():
    return load_script('demo/sam_click_demo.py')


def test_scene_and_scripted_clicks_are_deterministic():
    demo = load_demo()
    image, mask = demo.draw_scene()
    again, _ = demo.draw_scene()
    np.testing.assert_array_equal(image, again)
    clicks = demo.scripted_clicks(mask)
    assert [c[2] for c in clicks] == [1, 0, 1]
    for x, y, label in clicks:
        assert mask[int(round(y)), int(round(x))] == bool(label)


def test_demo_writes_one_panel_per_click(tmp_path, capsys):
    demo = load_demo()
    out = demo.main(['--out', str(tmp_path / 'overlay.png')])
    panels = cv2.imread(out)
    # three panels side by side, 4 white pixels around each
    assert panels.shape == (480 + 8, 640 * 3 + 16, 3)
    printed = capsys.readouterr().out
    assert 'RANDOM' in printed and printed.count('IoU') == 3


def test_demo_rejects_malformed_clicks(tmp_path, capsys):
    demo = load_demo()
    with pytest.raises(SystemExit):
        demo.main(['--clicks', '1,2,5', '--out', str(tmp_path / 'x.png')])
    assert 'x,y,label' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='none.jpg'):
        demo.main(['--image', str(tmp_path / 'none.jpg'), '--clicks', '1,2,1'])
    assert not (tmp_path / 'x.png').exists()
