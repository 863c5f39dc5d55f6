# Copyright (c) samref contributors. All rights reserved.
import json
import os
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

from samref.apis import init_model
from samref.datasets import make_shapes_dataset
from samref.engine import InteractiveTestLoop
from samref.engine.interactive_test_loop import WARM_UP_CLICKS
from testing_utils import CONFIG_DIR, REPO_ROOT, SHARED_DATA

NUM_CLICKS = 3


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    """Saved random weights, so every run and process uses the same."""
    torch.manual_seed(0)
    model = init_model(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_sam.pth'
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope='module')
def focuscut_root(tmp_path_factory):
    """Three images, one with two objects, in the FocusCut layout."""
    root = tmp_path_factory.mktemp('focuscut') / 'Toy'
    (root / 'img').mkdir(parents=True)
    (root / 'gt').mkdir()
    (root / 'list').mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i, (h, w) in enumerate([(40, 56), (50, 38), (45, 45)]):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(root / 'img' / f'im{i}.jpg'), image)
        boxes = [(5, 5, 20, 25)] + ([(25, 8, 35, 30)] if i == 0 else [])
        for k, (x0, y0, x1, y1) in enumerate(boxes, start=1):
            mask = np.zeros((h, w), np.uint8)
            mask[y0:y1, x0:x1] = 1
            mask[y0, x0:x1] = 255  # an ignored edge
            cv2.imwrite(str(root / 'gt' / f'im{i}#{k:03d}.png'), mask)
            lines.append(f'im{i}#{k:03d}')
    (root / 'list' / 'val.txt').write_text('\n'.join(lines) + '\n')
    return root


def make_config(data_root, work_dir, checkpoint, **test_cfg):
    cfg = Config.fromfile(str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'))
    eval_cfg = Config.fromfile(
        str(CONFIG_DIR / '_base_' / 'datasets' / 'eval_focuscut.py'))
    cfg.merge_from_dict(eval_cfg.to_dict())
    cfg.test_dataloader.dataset.data_root = str(data_root)
    cfg.test_dataloader.num_workers = 0
    cfg.test_cfg.num_clicks = NUM_CLICKS
    cfg.test_cfg.update(test_cfg)
    cfg.test_evaluator.output_dir = str(work_dir)
    cfg.work_dir = str(work_dir)
    cfg.load_from = checkpoint
    cfg.experiment_name = f'loop_{work_dir.name}'
    return cfg


def run_eval(cfg, count_encoder_calls=False):
    runner = RUNNERS.build(cfg)
    calls = []
    if count_encoder_calls:
        runner.model.image_encoder.register_forward_hook(
            lambda *args: calls.append(1))
    metrics = runner.test()
    with open(os.path.join(cfg.work_dir, 'results.json')) as f:
        return json.load(f), metrics, len(calls), runner


def test_loop_writes_complete_results(focuscut_root, tmp_path,
                                      tiny_checkpoint):
    cfg = make_config(focuscut_root, tmp_path / 'run', tiny_checkpoint)
    results, metrics, encoder_calls, _ = run_eval(cfg, True)
    # Once per image (not per object), and once for the warm-up.
    assert encoder_calls == 3 + 1
    samples = results['samples']
    assert [(os.path.basename(s['img_path']), s['object'])
            for s in samples] == [('im0.jpg', 0), ('im0.jpg', 1),
                                  ('im1.jpg', 0), ('im2.jpg', 0)]
    for sample in samples:
        assert len(sample['ious']) == len(sample['clicks']) == NUM_CLICKS
        assert sample['clicks'][0][2] == 1  # the first click is positive
        assert all(0.0 <= iou <= 1.0 for iou in sample['ious'])
    summary = results['summary']['Toy']
    ious = np.array([s['ious'] for s in samples])
    assert summary['mIoU@1'] == pytest.approx(ious[:, 0].mean())
    assert summary['num_objects'] == 4
    assert metrics['interactive/Toy/NoC90'] == summary['NoC90']
    assert summary['SPC'] > summary['SPC_no_encoder'] > 0
    assert (tmp_path / 'run' / 'miou_curve.png').stat().st_size > 0


def test_perfect_prediction_is_clicked_at_the_origin(focuscut_root, tmp_path,
                                                     tiny_checkpoint,
                                                     monkeypatch):
    """After a perfect mask the model gets the negative click at (0, 0)."""
    cfg = make_config(focuscut_root, tmp_path / 'perfect', tiny_checkpoint)
    runner = RUNNERS.build(cfg)
    model = runner.model
    current_gt = {}
    interact_object = InteractiveTestLoop.interact_object

    def remember_gt(self, gt, *args, **kwargs):
        current_gt['gt'] = gt
        return interact_object(self, gt, *args, **kwargs)

    def perfect_logits(logits, img_shape, ori_shape):
        gt = torch.from_numpy(current_gt['gt'] == 1)
        return torch.where(gt, 1.0, -1.0)[None, None]

    received = []
    interact = model.interact

    def record_interact(features, points, labels, *args):
        received.append((points[0, -1].tolist(), labels[0, -1].item()))
        return interact(features, points, labels, *args)

    monkeypatch.setattr(InteractiveTestLoop, 'interact_object', remember_gt)
    monkeypatch.setattr(model, 'postprocess_logits', perfect_logits)
    monkeypatch.setattr(model, 'interact', record_interact)
    runner.test()
    results = json.loads((tmp_path / 'perfect' / 'results.json').read_text())
    samples = results['samples']
    received = received[WARM_UP_CLICKS:]  # the untimed first run
    assert len(received) == len(samples) * NUM_CLICKS  # always called
    for k, sample in enumerate(samples):
        assert sample['ious'] == [1.0] * NUM_CLICKS
        assert sample['clicks'][0][2] == 1
        assert sample['clicks'][1:] == [[0, 0, 0]] * (NUM_CLICKS - 1)
        calls = received[k * NUM_CLICKS:(k + 1) * NUM_CLICKS]
        assert calls[1:] == [([0.0, 0.0], 0)] * (NUM_CLICKS - 1)


def test_evaluation_is_deterministic(focuscut_root, tmp_path, tiny_checkpoint):
    first, _, _, _ = run_eval(
        make_config(focuscut_root, tmp_path / 'a', tiny_checkpoint))
    second, _, _, _ = run_eval(
        make_config(focuscut_root, tmp_path / 'b', tiny_checkpoint))
    assert first['samples'] == second['samples']


def test_embedding_cache_skips_the_encoder(focuscut_root, tmp_path,
                                           tiny_checkpoint):
    cache = str(tmp_path / 'cache')
    cold, _, cold_calls, runner = run_eval(
        make_config(
            focuscut_root,
            tmp_path / 'cold',
            tiny_checkpoint,
            embedding_cache=cache), True)
    assert cold_calls == 3 + 1  # the warm-up neither counts nor stores
    assert runner.test_loop.embedding_cache.misses == 3
    warm, _, warm_calls, runner = run_eval(
        make_config(
            focuscut_root,
            tmp_path / 'warm',
            tiny_checkpoint,
            embedding_cache=cache), True)
    assert warm_calls == 0
    assert runner.test_loop.embedding_cache.hits == 3
    assert warm['samples'] == cold['samples']


def test_embedding_cache_does_not_serve_another_encoder(
        focuscut_root, tmp_path, tiny_checkpoint):
    cache = str(tmp_path / 'cache')
    run_eval(
        make_config(
            focuscut_root,
            tmp_path / 'one',
            tiny_checkpoint,
            embedding_cache=cache))
    other = torch.load(tiny_checkpoint)
    other['image_encoder.neck.0.weight'] += 1.0
    other_path = tmp_path / 'other.pth'
    torch.save(other, other_path)
    _, _, calls, runner = run_eval(
        make_config(
            focuscut_root,
            tmp_path / 'two',
            str(other_path),
            embedding_cache=cache), True)
    assert calls == 3 + 1 and runner.test_loop.embedding_cache.hits == 0


def test_first_image_is_timed_after_a_warm_up(focuscut_root, tmp_path,
                                              tiny_checkpoint, monkeypatch):
    """One-time start-up costs (here: a first encoding that takes 2 s
    longer, as CUDA's context and cuDNN's search make it) are not charged
    to the first image: it is run once untimed first."""
    runner = RUNNERS.build(
        make_config(focuscut_root, tmp_path / 'run', tiny_checkpoint))
    model = runner.model
    encode, calls = model.encode_image, []

    def first_call_slow(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(2.0)
        return encode(*args, **kwargs)

    records = []
    evaluate_image = runner.test_loop.evaluate_image

    def keep_record(data_batch):
        records.append(evaluate_image(data_batch))
        return records[-1]

    monkeypatch.setattr(model, 'encode_image', first_call_slow)
    monkeypatch.setattr(runner.test_loop, 'evaluate_image', keep_record)
    runner.test()
    assert len(calls) == 3 + 1 and len(records) == 3
    assert records[0]['encode_time'] < 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_processes_gather_identical_results(focuscut_root, tmp_path,
                                                tiny_checkpoint):
    single, _, _, _ = run_eval(
        make_config(focuscut_root, tmp_path / 'single', tiny_checkpoint))
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()))
    proc = subprocess.run([
        'bash',
        str(REPO_ROOT / 'tools' / 'dist_test.sh'),
        str(CONFIG_DIR / 'sam' / 'sam_vit-tiny_grabcut.py'), tiny_checkpoint,
        '2', '--interactive', '--num-clicks',
        str(NUM_CLICKS), '--work-dir',
        str(work_dir), '--cfg-options',
        f'test_dataloader.dataset.data_root={focuscut_root}',
        'test_dataloader.dataset.type=FocusCutDataset',
        'test_dataloader.num_workers=0'
    ],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(work_dir / 'results.json') as f:
        distributed = json.load(f)
    assert distributed['samples'] == single['samples']


def test_loop_rejects_batches_of_several_images(focuscut_root, tmp_path,
                                                tiny_checkpoint):
    cfg = make_config(focuscut_root, tmp_path / 'b2', tiny_checkpoint)
    cfg.test_dataloader.batch_size = 2
    runner = RUNNERS.build(cfg)
    with pytest.raises(ValueError, match='batch_size=1'):
        runner.test()


@pytest.mark.skipif(
    not (SHARED_DATA / 'GrabCut').is_dir(),
    reason=f'real GrabCut copy not found at {SHARED_DATA / "GrabCut"}')
def test_real_grabcut_images(tmp_path, tiny_checkpoint):
    cfg = Config.fromfile(str(CONFIG_DIR / 'sam' / 'sam_vit-tiny_grabcut.py'))
    cfg.test_dataloader.dataset.data_root = str(SHARED_DATA / 'GrabCut')
    cfg.test_dataloader.dataset.indices = 3
    cfg.test_dataloader.num_workers = 0
    cfg.test_cfg.num_clicks = 2
    cfg.test_evaluator.output_dir = str(tmp_path)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = tiny_checkpoint
    results, _, _, _ = run_eval(cfg)
    assert len(results['samples']) == 3
    assert results['summary']['GrabCut']['num_objects'] == 3


def test_test_script_evaluates_several_benchmarks_at_once(
        focuscut_root, tmp_path, tiny_checkpoint):
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 2, seed=4)
    work_dir = tmp_path / 'several'
    proc = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'test.py'),
        str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'), tiny_checkpoint,
        '--datasets', f'focuscut={focuscut_root}', f'coco-mval={shapes}',
        '--num-clicks', '2', '--first-prompt', 'box', '--work-dir',
        str(work_dir), '--cfg-options', 'test_dataloader.num_workers=0',
        '--show-dir',
        str(tmp_path / 'show'), '--show-num', '2', '--show-clicks', '1', '2'
    ],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((work_dir / 'results.json').read_text())
    assert results['summary']['Toy']['num_objects'] == 4
    # --first-prompt box: the box, then one click.
    assert results['first_prompt'] == 'box'
    assert results['samples'][0]['box'] == [5, 6, 20, 25]
    assert all(
        len(s['box']) == 4 and len(s['clicks']) == 1
        for s in results['samples'])
    assert 'box first' in proc.stdout + proc.stderr
    # One object per image/mask pair of the COCO-MVal layout.
    assert results['summary']['COCO-MVal']['num_objects'] == len(
        os.listdir(os.path.join(shapes, 'gt')))
    # --show-dir: the first two objects, both of the first Toy image
    assert sorted(os.listdir(tmp_path /
                             'show')) == ['Toy_im0_0.png', 'Toy_im0_1.png']
    bad = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'test.py'),
        str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'), tiny_checkpoint,
        '--datasets', 'imagenet'
    ],
                         cwd=REPO_ROOT,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert bad.returncode != 0 and 'imagenet' in bad.stderr
    assert 'grabcut' in bad.stderr


def test_show_dir_draws_the_first_objects(focuscut_root, tmp_path,
                                          tiny_checkpoint):
    show = tmp_path / 'show'
    cfg = make_config(
        focuscut_root,
        tmp_path / 'shown',
        tiny_checkpoint,
        show_dir=str(show),
        show_clicks=[1, 3, 5],  # 5 > NUM_CLICKS: not drawn
        show_max_objects=3)
    run_eval(cfg)
    assert sorted(os.listdir(show)) == [
        'Toy_im0_0.png', 'Toy_im0_1.png', 'Toy_im1_0.png'
    ]
    picture = cv2.imread(str(show / 'Toy_im1_0.png'))
    # a title strip, then the ground truth and clicks 1 and 3 of the
    # 50 x 38 image, 4 white pixels around each panel
    assert picture.shape == (24 + 50 + 8, 3 * 38 + 4 * 4, 3)


def test_show_dir_draws_the_patchdiff_window(focuscut_root, tmp_path,
                                             monkeypatch):
    from samref.engine import interactive_test_loop
    drawn = []
    monkeypatch.setattr(
        interactive_test_loop, 'draw_click_progress',
        lambda *args, **kwargs: drawn.append((args, kwargs)) or np.zeros(
            (4, 4, 3), np.uint8))
    cfg = make_config(
        focuscut_root,
        tmp_path / 'samref',
        None,
        show_dir=str(tmp_path / 'show'),
        show_clicks=[1, 2],
        show_max_objects=1)
    cfg.model = Config.fromfile(
        str(CONFIG_DIR / 'samref' / 'samref_vit-tiny.py')).model
    cfg.test_dataloader.dataset.indices = 1  # the first image
    cfg.model.use_selector = False  # PatchDiff after every click
    run_eval(cfg)
    ((image, gt, steps, clicks, title), options), = drawn
    assert options == dict(prompt_box=None)  # the click protocol
    assert image.shape == (40, 56, 3) and gt.shape == (40, 56)
    assert 'im0' in title and 'SAMRef' in title
    assert [s['click'] for s in steps] == [1, 2] and len(clicks) == 3
    for step in steps:
        x0, y0, x1, y1 = step['box']
        x, y, _ = clicks[step['click'] - 1]
        # the window is around the click, in pixels of the image
        assert 0 <= x0 <= x <= x1 <= 56 and 0 <= y0 <= y <= y1 <= 40
        assert step['mask'].shape == (40, 56)


def test_box_first_protocol_starts_each_object_with_its_box(
        focuscut_root, tmp_path, tiny_checkpoint, monkeypatch):
    cfg = make_config(
        focuscut_root, tmp_path / 'box', tiny_checkpoint, first_prompt='box')
    runner = RUNNERS.build(cfg)
    model = runner.model
    received = []
    interact = model.interact

    def record_interact(features, points, labels, previous=None, boxes=None):
        received.append((points.shape[1], boxes))
        return interact(features, points, labels, previous, boxes)

    monkeypatch.setattr(model, 'interact', record_interact)
    runner.test()
    results = json.loads((tmp_path / 'box' / 'results.json').read_text())
    assert results['first_prompt'] == 'box'
    samples = results['samples']
    # The ground truth's box (row 5 is ignored, not the object), on the
    # pixel grid's edges; then the clicks, NUM_CLICKS interactions in all.
    assert [s['box'] for s in samples] == [[5, 6, 20, 25], [25, 9, 35, 30],
                                           [5, 6, 20, 25], [5, 6, 20, 25]]
    for sample in samples:
        assert len(sample['ious']) == NUM_CLICKS
        assert len(sample['clicks']) == NUM_CLICKS - 1
    assert results['summary']['Toy']['mIoU@1'] == pytest.approx(
        np.mean([s['ious'][0] for s in samples]))
    received = received[WARM_UP_CLICKS:]
    assert [n for n, _ in received] == [0, 1, 2] * len(samples)
    # The box goes with every interaction, scaled to the input frame: im0's
    # 56 x 40 pixels become 1024 x 731.
    scale = np.array([1024 / 56, 731 / 40] * 2)
    for _, boxes in received[:NUM_CLICKS]:
        np.testing.assert_allclose(
            boxes[0].tolist(), np.array([5, 6, 20, 25]) * scale, rtol=1e-5)
    with pytest.raises(ValueError, match='first_prompt must be one of'):
        RUNNERS.build(
            make_config(
                focuscut_root,
                tmp_path / 'bad',
                tiny_checkpoint,
                first_prompt='scribble')).test()
