# Copyright (c) samref contributors. All rights reserved.
"""The web demo's callbacks, without a browser."""
import json
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from malicious_files import png_pixel_bomb, png_text_bomb
from samref.apis import init_model
from testing_utils import CONFIG_DIR, load_script

SAM_CONFIG = str(CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py')
SAMREF_CONFIG = str(CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py')


@pytest.fixture(scope='module')
def app_module():
    return load_script('demo/app.py')


@pytest.fixture(scope='module')
def example(app_module, tmp_path_factory):
    return app_module.make_examples(str(tmp_path_factory.mktemp('ex')), 1)[0]


def start(app_module, model, example, tmp_path):
    app = app_module.ClickApp(model, 'banner', [example], str(tmp_path))
    steps = list(app.load(example, None))
    return app, steps


def test_upload_encodes_once_with_a_status_first(app_module, example,
                                                 tmp_path):
    torch.manual_seed(0)
    model = init_model(SAM_CONFIG)
    app, steps = start(app_module, model, example, tmp_path)
    assert len(steps) == 2
    assert steps[0][2].startswith('Encoding shapes_0.png (480 x 360)')
    session, view, status, stages, _ = steps[1]
    assert view.shape == (360, 480, 3) and stages is None
    assert 'encoded in' in status and 'Click on the object' in status
    assert session.clicks.image_features is not None


def test_clicks_undo_reset_next_and_export(app_module, example, tmp_path):
    torch.manual_seed(0)
    app, steps = start(app_module, init_model(SAM_CONFIG), example, tmp_path)
    session, empty_view = steps[-1][0], steps[-1][1]
    session, view1, status, stages, times = app.click(session, 240, 180, True)
    first = session.mask.copy()
    assert first.shape == (360, 480) and first.any()
    assert not np.array_equal(view1, empty_view)
    assert 'Click 1 (+) at (240, 180)' in status and ' ms' in status
    assert stages is None and 'whole click' in times  # SAM: no stage panel
    session = app.click(session, 20, 20, False)[0]
    assert len(session.steps) == 2 and session.steps[-1].click[2] is False
    # the previous logits are fed back: the same result as predictions
    # chained by hand
    first_click = session.clicks.predict([(240, 180, True)])
    direct = session.clicks.predict([(240, 180, True), (20, 20, False)],
                                    first_click.interaction)
    np.testing.assert_array_equal(session.mask, direct.mask)
    session, view, *_ = app.undo(session)
    np.testing.assert_array_equal(session.mask, first)
    np.testing.assert_array_equal(view, view1)
    files, line = app.export(session)
    png, coco = files
    np.testing.assert_array_equal(mmcv.imread(png, 'unchanged') > 0, first)
    with open(coco) as f:
        data = json.load(f)
    (ann, ) = data['annotations']
    np.testing.assert_array_equal(
        mask_utils.decode(
            dict(
                ann['segmentation'],
                counts=ann['segmentation']['counts'].encode())), first)
    assert ann['area'] == int(first.sum()) and 'Exported 1' in line
    session = app.next_object(session)[0]
    assert session.steps == [] and len(session.objects) == 1
    session = app.click(session, 100, 100, True)[0]
    files, line = app.export(session)
    with open(files[1]) as f:
        assert len(json.load(f)['annotations']) == 2
    session, view, *_ = app.reset(session)
    assert session.steps == [] and len(session.objects) == 1


def test_samref_shows_its_stages(app_module, example, tmp_path):
    torch.manual_seed(0)
    # the selector off: PatchDiff refines a window after every click
    model = init_model(
        SAMREF_CONFIG, cfg_options={'model.use_selector': False})
    app, steps = start(app_module, model, example, tmp_path)
    session, view, status, stages, times = app.click(steps[-1][0], 240, 180,
                                                     True)
    assert stages is not None and stages.shape[1] > 3 * stages.shape[0]
    for stage in ('sam', 'global_diff', 'patch_diff'):
        assert f'{stage} ' in times
    assert 'branch **patch**' in times
    x0, y0, x1, y1 = session.steps[-1].window
    assert 0 <= x0 < 240 < x1 <= 480 and 0 <= y0 < 180 < y1 <= 360


def test_select_maps_display_pixels_to_the_picture(app_module, tmp_path):
    torch.manual_seed(0)
    big = np.zeros((1500, 3000, 3), np.uint8)
    path = str(tmp_path / 'big.png')
    mmcv.imwrite(big, path)
    app, steps = start(app_module, init_model(SAM_CONFIG), path, tmp_path)
    session, view = steps[-1][:2]
    assert view.shape == (512, 1024, 3)  # drawn at most 1024 wide
    session = app.select(session, 'negative',
                         SimpleNamespace(index=[512, 256]))[0]
    assert session.steps[-1].click == (1500.0, 750.0, False)


def test_bad_input_gets_a_message(app_module, example, tmp_path):
    torch.manual_seed(0)
    app = app_module.ClickApp(
        init_model(SAM_CONFIG), 'banner', [], str(tmp_path))
    text = tmp_path / 'notes.png'
    text.write_text('not a picture')
    (session, _, status, *_), = list(app.load(str(text), None))
    assert session is None and 'notes.png: no readable PNG, JPEG' in status
    huge = tmp_path / 'huge.png'
    mmcv.imwrite(np.zeros((8, 5000), np.uint8), str(huge))
    (session, _, status, *_), = list(app.load(str(huge), None))
    assert session is None and '5000 x 8 pixels' in status
    assert '4096 x 4096' in status
    assert 'Upload an image first' in app.click(None, 1, 1, True)[2]
    session = list(app.load(example, None))[-1][0]
    status = app.click(session, 900, 10, True)[2]
    assert 'outside the 480 x 360' in status and not session.steps
    assert 'No mask to export' in app.export(session)[1]


def test_upload_of_attack_files_gets_a_message(app_module, tmp_path):
    """Every decoding failure of an upload becomes its message; formats
    other than PNG, JPEG, BMP, TIFF and WebP are not even parsed."""
    torch.manual_seed(0)
    app = app_module.ClickApp(
        init_model(SAM_CONFIG), 'banner', [], str(tmp_path))
    eps = tmp_path / 'figure.eps'
    eps.write_text('%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n'
                   'showpage\n')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    cut = tmp_path / 'cut.png'
    mmcv.imwrite(np.full((64, 64, 3), 7, np.uint8), str(cut))
    cut.write_bytes(cut.read_bytes()[:80])
    expected = {
        png_text_bomb(tmp_path / 'text.png', b'zTXt'):
        'text.png: no '
        'readable PNG, JPEG, BMP, TIFF, WEBP image header (ValueError: '
        'Decompressed',
        png_text_bomb(tmp_path / 'icc.png', b'iCCP'):
        'icc.png: no readable',
        png_pixel_bomb(tmp_path / 'bomb.png', 9000, 9000):
        'bomb.png is '
        '9000 x 9000 pixels',
        eps:
        'figure.eps: no readable PNG',
        empty:
        'empty.png is an empty file',
        cut:
        'cut.png cannot be decoded',
    }
    for path, message in expected.items():
        (session, _, status, *_), = list(app.load(str(path), None))
        assert session is None and message in status, status


def test_weights_banner_and_checkpoints(app_module, tmp_path):
    model, banner = app_module.load_model(
        SAMREF_CONFIG, demo_work_dir=str(tmp_path))
    assert 'RANDOM WEIGHTS' in banner
    (tmp_path / 'stage2').mkdir()
    for iters in (5, 10):
        torch.save(model.state_dict(),
                   tmp_path / 'stage2' / f'iter_{iters}.pth')
    found = app_module.find_demo_checkpoint(model, str(tmp_path))
    assert found.endswith('iter_10.pth')
    _, banner = app_module.load_model(
        SAMREF_CONFIG, demo_work_dir=str(tmp_path))
    assert 'make demo' in banner and 'iter_10.pth' in banner
    # SAM finds no stage-1 checkpoint there
    assert 'RANDOM' in app_module.load_model(
        SAM_CONFIG, demo_work_dir=str(tmp_path))[1]
    alien = tmp_path / 'alien.pth'
    torch.save({'backbone.weight': torch.zeros(3)}, alien)
    with pytest.raises(app_module.AppError, match='does not fit'):
        app_module.load_model(SAMREF_CONFIG, str(alien))
    with pytest.raises(app_module.AppError, match='does not exist'):
        app_module.load_model(str(tmp_path / 'none.py'))


def test_page_builds(app_module, example, tmp_path):
    gr = pytest.importorskip(
        'gradio',
        reason='gradio is optional: '
        'pip install -r requirements/optional.txt')
    app = app_module.ClickApp(
        init_model(SAM_CONFIG), 'banner', [example], str(tmp_path))
    assert isinstance(app.build(), gr.Blocks)
