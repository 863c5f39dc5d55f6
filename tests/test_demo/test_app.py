# Copyright (c) samref contributors. All rights reserved.
"""The web demo's callbacks, without a browser."""
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from malicious_files import (ATTACKS, PROCESS_ATTACKS, png_pixel_bomb,
                             png_text_bomb)
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


def launch(page, tmp_path) -> None:
    """Serve a built page on a free port of 127.0.0.1, two clicks at once,
    without blocking the test."""
    page.queue(default_concurrency_limit=2).launch(
        server_name='127.0.0.1',
        server_port=None,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
        allowed_paths=[str(tmp_path)])


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


def test_samref_shows_its_stages_when_asked(app_module, example, tmp_path,
                                            monkeypatch):
    torch.manual_seed(0)
    # the selector off: PatchDiff refines a window after every click
    model = init_model(
        SAMREF_CONFIG, cfg_options={'model.use_selector': False})
    app, steps = start(app_module, model, example, tmp_path)
    drawn = []
    stage_panel = app.stage_panel
    monkeypatch.setattr(
        app, 'stage_panel',
        lambda session: drawn.append(1) or stage_panel(session))
    session, view, status, stages, times = app.click(steps[-1][0], 240, 180,
                                                     True)
    assert stages is None and not drawn  # by default only the view
    for stage in ('sam', 'global_diff', 'patch_diff'):
        assert f'{stage} ' in times
    assert 'branch **patch**' in times
    x0, y0, x1, y1 = session.steps[-1].window
    assert 0 <= x0 < 240 < x1 <= 480 and 0 <= y0 < 180 < y1 <= 360
    # shown on demand: the panel of the current click
    first = app.outputs(session, show_stages=True)[3]
    assert first.shape[1] > 3 * first.shape[0] and len(drawn) == 1
    second = app.click(session, 100, 300, False, show_stages=True)[3]
    assert second is not None and not np.array_equal(first, second)
    np.testing.assert_array_equal(
        app.undo(session, show_stages=True)[3], first)
    assert app.reset(session, show_stages=True)[3] is None  # no click left


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


def test_weights_load_into_the_one_model_built(app_module, tmp_path,
                                               monkeypatch):
    from mmseg.registry import MODELS
    built = []
    build = MODELS.build

    def counting_build(cfg, *args, **kwargs):
        module = build(cfg, *args, **kwargs)
        built.append(type(module).__name__)
        return module

    monkeypatch.setattr(MODELS, 'build', counting_build)
    model, _ = app_module.load_model(
        SAMREF_CONFIG, demo_work_dir=str(tmp_path))
    assert built.count('SAMRef') == 1
    weights = {
        k: torch.full_like(v, 0.5)
        for k, v in model.state_dict().items() if v.is_floating_point()
    }
    torch.save(weights, tmp_path / 'weights.pth')
    built.clear()
    model, _ = app_module.load_model(SAMREF_CONFIG,
                                     str(tmp_path / 'weights.pth'))
    assert built.count('SAMRef') == 1
    assert all((model.state_dict()[k] == 0.5).all() for k in weights)
    # A demo checkpoint that does not fit leaves the random weights whole.
    (tmp_path / 'stage2').mkdir()
    weights.pop(next(iter(weights)))
    torch.save(weights, tmp_path / 'stage2' / 'iter_10.pth')
    model, banner = app_module.load_model(
        SAMREF_CONFIG, demo_work_dir=str(tmp_path))
    assert 'RANDOM WEIGHTS' in banner
    assert not any((model.state_dict()[k] == 0.5).all() for k in weights)


@pytest.mark.parametrize('attack',
                         sorted(ATTACKS) + ['numpy_pointer', 'case_twin'])
def test_a_hostile_checkpoint_is_refused_by_the_app(app_module, tmp_path,
                                                    attack):
    # In this process: a payload that ran would leave the marker, and the
    # numpy pointer would end the process with SIGSEGV.
    weights = {'global_refiner.error_detail.bias': torch.zeros(2)}
    marker = tmp_path / 'code_ran'
    build = {**ATTACKS, **PROCESS_ATTACKS}[attack]
    path = build(tmp_path / 'carrier.pth', marker, weights)
    with pytest.raises(app_module.AppError, match='carrier.pth'):
        app_module.load_model(SAMREF_CONFIG, str(path))
    assert not marker.exists()


def test_config_overrides_reach_the_model(app_module, tmp_path):
    args = app_module.parse_args(
        [SAMREF_CONFIG, '--cfg-options', 'model.refiner_dtype=auto'])
    assert args.cfg_options == {'model.refiner_dtype': 'auto'}
    model, _ = app_module.load_model(
        SAMREF_CONFIG,
        demo_work_dir=str(tmp_path),
        cfg_options=args.cfg_options)
    assert model.refiner_dtype == 'auto'
    # A checkpoint given by the user loads into the overridden model too.
    torch.save(model.state_dict(), tmp_path / 'weights.pth')
    model, _ = app_module.load_model(
        SAMREF_CONFIG,
        str(tmp_path / 'weights.pth'),
        cfg_options={'model.refiner_dtype': 'bfloat16'})
    assert model.refiner_dtype == 'bfloat16'
    with pytest.raises(app_module.AppError, match='refiner_dtype'):
        app_module.load_model(
            SAMREF_CONFIG, cfg_options={'model.refiner_dtype': 'int3'})


def test_page_builds(app_module, example, tmp_path):
    gr = pytest.importorskip(
        'gradio',
        reason='gradio is optional: '
        'pip install -r requirements/optional.txt')
    app = app_module.ClickApp(
        init_model(SAM_CONFIG), 'banner', [example], str(tmp_path))
    assert isinstance(app.build(), gr.Blocks)


def test_scripted_click_checks_its_input(app_module, example, tmp_path):
    torch.manual_seed(0)
    app, steps = start(app_module, init_model(SAM_CONFIG), example, tmp_path)
    session = steps[-1][0]
    with pytest.raises(app_module.AppError, match='upload one first'):
        app.scripted_click(None, 1, 1, 1)
    bad = {
        ('12', 10, 1): "x must be a finite number of picture pixels, got '12'",
        (10, float('nan'), 1): 'y must be a finite number',
        (True, 10, 1): 'x must be a finite number',
        (480.5, 10, 1): r'x = 480.5 is outside the 480 x 360 \(W x H\) '
        r'picture: 0 <= x <= 480',
        (10, -1, 1): 'y = -1 is outside',
        (10, 10, 2): r'label must be 1 \(positive click\) or 0 \(negative '
        r'click\), got 2',
        (10, 10, None): 'label must be 1',
        (10, 10, 'positive'): 'label must be 1',
    }
    for (x, y, label), message in bad.items():
        with pytest.raises(app_module.AppError, match=message):
            app.scripted_click(session, x, y, label)
    assert not session.steps
    assert app.click_record(session)['mask'] is None
    app.scripted_click(session, 240.0, 180.0, 1.0)
    session, view, status, _, _ = app.scripted_click(session, 20, 20, 0)
    assert [s.click for s in session.steps] == [(240.0, 180.0, True),
                                                (20.0, 20.0, False)]
    assert 'Click 2 (-) at (20, 20)' in status
    record = app.click_record(session)
    assert record['clicks'] == [[240.0, 180.0, 1], [20.0, 20.0, 0]]
    rle = dict(record['mask'], counts=record['mask']['counts'].encode())
    np.testing.assert_array_equal(mask_utils.decode(rle), session.mask)
    assert record['mask_area'] == int(session.mask.sum())
    assert record['click_ms'] == pytest.approx(session.steps[-1].click_time *
                                               1e3)
    assert record['objects'] == 0
    json.dumps(record)  # what the endpoint returns must be JSON


def test_sessions_on_one_model_stay_apart(app_module, tmp_path):
    """Two users' sessions on one model, clicking alternately and at the
    same time, get what each gets alone."""
    torch.manual_seed(0)
    model = init_model(SAMREF_CONFIG)
    pictures = app_module.make_examples(str(tmp_path / 'pictures'), 2)
    clicks = [[(240, 180, True), (100, 80, False), (300, 200, True)],
              [(60, 300, True), (400, 50, True), (200, 200, False)]]

    def alone(picture, picture_clicks):
        app = app_module.ClickApp(model, 'banner', [], str(tmp_path))
        session = list(app.load(picture, None))[-1][0]
        views = [app.click(session, *click)[1] for click in picture_clicks]
        return [s.mask for s in session.steps], views

    expected = [alone(p, c) for p, c in zip(pictures, clicks)]
    assert not np.array_equal(expected[0][0][-1], expected[1][0][-1])
    app = app_module.ClickApp(model, 'banner', [], str(tmp_path))
    sessions = [list(app.load(p, None))[-1][0] for p in pictures]
    views = [[], []]
    for step in range(3):
        for user in (0, 1):
            views[user].append(
                app.click(sessions[user], *clicks[user][step])[1])
    for user in (0, 1):
        masks, user_views = expected[user]
        assert [s.click for s in sessions[user].steps
                ] == [(float(x), float(y), p) for x, y, p in clicks[user]]
        for mask, step in zip(masks, sessions[user].steps):
            np.testing.assert_array_equal(step.mask, mask)
        for view, expected_view in zip(views[user], user_views):
            np.testing.assert_array_equal(view, expected_view)

    def click_all(user):
        session = list(app.load(pictures[user], None))[-1][0]
        for click in clicks[user]:
            app.click(session, *click)
        return session

    with ThreadPoolExecutor(2) as pool:
        sessions = list(pool.map(click_all, (0, 1)))
    for user in (0, 1):
        for mask, step in zip(expected[user][0], sessions[user].steps):
            np.testing.assert_array_equal(step.mask, mask)


def test_scripted_clicks_through_gradio_client(app_module, example, tmp_path):
    """The endpoints a script uses, /upload and /click, with one session
    per client."""
    pytest.importorskip(
        'gradio',
        reason='gradio is optional: '
        'pip install -r requirements/optional.txt')
    from gradio_client import Client, handle_file
    torch.manual_seed(0)
    app = app_module.ClickApp(
        init_model(SAM_CONFIG), 'banner', [example], str(tmp_path))
    page = app.build()
    launch(page, tmp_path)
    try:
        first, second = (
            Client(page.local_url, verbose=False) for _ in range(2))
        for client in (first, second):
            status = client.predict(
                handle_file(example), api_name='/upload')[1]
            assert '**shapes_0.png** (480 x 360), encoded' in status
        first.predict(240, 180, 1, api_name='/click')
        view, status, _, record = first.predict(20, 20, 0, api_name='/click')
        assert 'Click 2 (-) at (20, 20)' in status
        assert record['clicks'] == [[240, 180, 1], [20, 20, 0]]
        assert mmcv.imread(view).shape == (360, 480, 3)
        record = second.predict(100, 100, 1, api_name='/click')[-1]
        assert record['clicks'] == [[100, 100, 1]]
        with pytest.raises(Exception, match='label must be 1'):
            second.predict(100, 100, 5, api_name='/click')
    finally:
        page.close()


def test_scripted_click_without_the_view_draws_nothing(app_module, example,
                                                       tmp_path, monkeypatch):
    """A script that reads only the record (view false) gets the same click
    and record, and the view is neither drawn nor returned."""
    torch.manual_seed(0)
    model = init_model(SAMREF_CONFIG)
    app, steps = start(app_module, model, example, tmp_path)
    with_view = steps[-1][0]
    _, view, status, _, times = app.scripted_click(with_view, 240, 180, 1)
    assert view.shape == (360, 480, 3)
    app, steps = start(app_module, model, example, tmp_path)
    drawn = []
    draw = app.view
    monkeypatch.setattr(app, 'view',
                        lambda session: drawn.append(1) or draw(session))
    session, no_view, no_view_status, _, no_view_times = app.scripted_click(
        steps[-1][0], 240, 180, 1, False)
    assert no_view is None and not drawn
    np.testing.assert_array_equal(session.mask, with_view.mask)
    assert 'Click 1 (+) at (240, 180)' in status
    assert 'Click 1 (+) at (240, 180)' in no_view_status
    record, expected = app.click_record(session), app.click_record(with_view)
    assert record['clicks'] == expected['clicks']
    assert record['mask'] == expected['mask']
    with pytest.raises(
            app_module.AppError, match='view must be true or '
            "false, got 'no'"):
        app.scripted_click(session, 10, 10, 1, 'no')
    assert len(session.steps) == 1


def test_scripted_clicks_through_the_http_api(app_module, example, tmp_path,
                                              monkeypatch):
    """AppClient on the real app: a session per client, the record without
    the view unless asked for, the app's messages raised."""
    pytest.importorskip(
        'gradio',
        reason='gradio is optional: '
        'pip install -r requirements/optional.txt')
    from samref.apis.app_client import AppClient, AppClientError
    torch.manual_seed(0)
    model = init_model(SAM_CONFIG)
    app = app_module.ClickApp(model, 'banner', [example], str(tmp_path))
    drawn = []
    draw = app.view
    monkeypatch.setattr(app, 'view',
                        lambda session: drawn.append(1) or draw(session))
    page = app.build()
    launch(page, tmp_path)
    try:
        with AppClient(page.local_url) as first, \
                AppClient(page.local_url) as second:
            with pytest.raises(AppClientError, match='upload one first'):
                first.click(10, 10, 1)
            text = tmp_path / 'notes.png'
            text.write_text('not a picture')
            with pytest.raises(AppClientError, match='notes.png: no readable'):
                first.upload(str(text))
            for client in (first, second):
                assert '**shapes_0.png** (480 x 360), encoded' in \
                    client.upload(example)
            drawn.clear()
            first.click(240, 180, 1)
            record = first.click(20, 20, 0)
            assert not drawn  # no view for a record
            assert record['clicks'] == [[240, 180, 1], [20, 20, 0]]
            other = second.click(100, 100, 1)
            assert other['clicks'] == [[100, 100, 1]]
            # the same masks as a session of its own on the model
            own = app_module.InteractivePredictor(model)
            own.set_image(
                mmcv.imread(example, channel_order='rgb'), channel_order='rgb')
            session = own.new_session()
            for x, y, positive in ((240, 180, True), (20, 20, False)):
                session.add_click(x, y, positive)
            rle = dict(
                record['mask'], counts=record['mask']['counts'].encode())
            np.testing.assert_array_equal(mask_utils.decode(rle), session.mask)
            # the view when asked for, a JPEG of the picture's size
            outputs = first.call('click', 300, 200, 1, True)
            assert len(drawn) == 1 and 'Click 3 (+)' in outputs[2]
            view = mmcv.imfrombytes(first.download(outputs[1]))
            assert view.shape == (360, 480, 3)
            with pytest.raises(AppClientError, match='label must be 1'):
                first.click(10, 10, 5)
            assert 'Click 2 (-)' in first.undo()
            assert 'Click on the object' in first.reset()
            assert 'No mask to keep yet' in first.next_object()
            assert second.click(400, 50, 1)['clicks'] == [[100, 100, 1],
                                                          [400, 50, 1]]
    finally:
        page.close()
