# Copyright (c) samref contributors. All rights reserved.
"""The command-line tools under the loading policy, as a user runs them."""
import json
import subprocess
import sys

import pytest
import torch

from malicious_files import (ATTACKS, PROCESS_ATTACKS, png_pixel_bomb,
                             png_text_bomb)
from samref.apis import init_model
from samref.datasets import make_shapes_dataset
from testing_utils import CONFIG_DIR, NO_VALIDATION_OPTIONS, REPO_ROOT

SAM_TINY = CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'
STAGE2 = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_dataset(
        str(tmp_path_factory.mktemp('shapes')), 2, seed=6)


@pytest.fixture(scope='module')
def sam_weights():
    torch.manual_seed(0)
    return init_model(SAM_TINY).state_dict()


def run_tool(*args):
    return subprocess.run([sys.executable, *map(str, args)],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_test_script_refuses_code_carrying_checkpoint(tmp_path, shapes,
                                                      sam_weights, attack):
    marker = tmp_path / 'code_ran'
    ckpt = ATTACKS[attack](tmp_path / 'carrier.pth', marker, sam_weights)
    proc = run_tool(REPO_ROOT / 'tools' / 'test.py', SAM_TINY, ckpt,
                    '--datasets', f'coco-mval={shapes}', '--num-clicks', 1,
                    '--work-dir', tmp_path / 'work', '--cfg-options',
                    'test_dataloader.num_workers=0')
    assert proc.returncode != 0
    assert f'Refused to load {ckpt}' in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / 'work' / 'results.json').exists()


def test_test_script_strict(tmp_path, shapes, sam_weights):
    partial = dict(sam_weights)
    del partial['mask_decoder.iou_token.weight']
    ckpt = tmp_path / 'partial.pth'
    torch.save(partial, ckpt)
    proc = run_tool(REPO_ROOT / 'tools' / 'test.py', SAM_TINY, ckpt,
                    '--datasets', f'coco-mval={shapes}', '--num-clicks', 1,
                    '--work-dir', tmp_path / 'work', '--strict',
                    '--cfg-options', 'test_dataloader.num_workers=0')
    assert proc.returncode != 0
    assert 'does not match the model: new' in proc.stderr
    assert 'mask_decoder (1 tensors)' in proc.stderr


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_train_resume_refuses_code_carrying_load_from(tmp_path, shapes,
                                                      attack):
    marker = tmp_path / 'code_ran'
    torch.manual_seed(0)
    weights = init_model(STAGE2).state_dict()
    ckpt = ATTACKS[attack](tmp_path / 'carrier.pth', marker, weights)
    work_dir = tmp_path / 'work'
    proc = run_tool(REPO_ROOT / 'tools' / 'train.py', STAGE2, '--resume',
                    '--work-dir', work_dir, '--cfg-options',
                    f'load_from={ckpt}',
                    f'train_dataloader.dataset.data_root={shapes}',
                    'train_dataloader.num_workers=0',
                    'train_dataloader.batch_size=1', 'train_cfg.max_iters=1',
                    *NO_VALIDATION_OPTIONS)
    assert proc.returncode != 0
    assert f'Refused to load {ckpt}' in proc.stderr
    assert not marker.exists()
    assert not (work_dir / 'iter_1.pth').exists()


CHECKPOINT_ENTRIES = ('init_model', 'test_script', 'train_load_from',
                      'train_resume', 'app_checkpoint', 'focsam_converter')
IMAGE_ENTRIES = ('dataset', 'app_upload', 'click_demo', 'read_image')


def run_entry_points(tmp_path, pairs):
    """Run ``tests/loading_entry_points.py`` on ``(entry, file)`` pairs;
    its reports and the megabytes its peak memory grew by."""
    spec = tmp_path / 'spec.json'
    spec.write_text(json.dumps([[entry, str(path)] for entry, path in pairs]))
    proc = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tests' / 'loading_entry_points.py'),
        str(spec)
    ],
                          cwd=tmp_path,
                          capture_output=True,
                          text=True,
                          timeout=600)
    out = tmp_path / 'spec.json.out'
    lines = [json.loads(line) for line in out.read_text().splitlines()] \
        if out.exists() else []
    # A negative code is a signal: the file crashed the process.
    assert proc.returncode == 0, (proc.returncode, lines, proc.stderr[-3000:])
    return lines[:-1], lines[-1]['grown_mb']


def test_every_checkpoint_loader_refuses_process_attacks(tmp_path):
    """The numpy pointer, the case-twin pickle and the deflate bomb, fed to
    each tool and function that loads a checkpoint (and a list nested
    100000 deep to ``--resume``), in one process that must end normally:
    each is refused naming the file, no marker appears, no output is
    written and the process does not grow by the bomb."""
    weights = {'weight': torch.ones(2)}
    megabytes = 512
    files = {
        'numpy_pointer':
        PROCESS_ATTACKS['numpy_pointer'](tmp_path / 'pointer.pth', None,
                                         weights),
        'case_twin':
        PROCESS_ATTACKS['case_twin'](tmp_path / 'twin.pth',
                                     tmp_path / 'code_ran', weights),
        'deflate_bomb':
        PROCESS_ATTACKS['deflate_bomb'](tmp_path / 'bomb.pth', None, weights,
                                        megabytes),
    }
    # mmengine's resume walks what it loads recursively.
    deep = PROCESS_ATTACKS['nesting'](tmp_path / 'deep.pth', None, weights)
    reports, grown = run_entry_points(
        tmp_path, [(entry, path) for entry in CHECKPOINT_ENTRIES
                   for path in files.values()] + [('train_resume', deep)])
    assert len(reports) == len(CHECKPOINT_ENTRIES) * len(files) + 1
    for report in reports:
        assert report['error'] is not None, report
        assert f'Refused to load {report["file"]}' in report['error'], report
    assert not (tmp_path / 'code_ran').exists()
    assert grown < megabytes / 2, grown


def test_every_image_reader_refuses_image_bombs(tmp_path):
    """Pixel bombs (one that decodes whole, one cut short), text-chunk bombs
    and an empty file, fed to each reader of images in one process."""
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    files = {
        png_pixel_bomb(tmp_path / 'pixels.png', 9000, 9000):
        'is 9000 x 9000 pixels, more than the limit of 67108864',
        png_pixel_bomb(tmp_path / 'huge.png', 40000, 40000, complete=False):
        'declares 1600000000 pixels, more than the limit',
        png_text_bomb(tmp_path / 'ztxt.png', b'zTXt'): 'Decompressed',
        png_text_bomb(tmp_path / 'iccp.png', b'iCCP'): 'Decompressed',
        empty: 'empty',
    }
    reports, grown = run_entry_points(tmp_path, [(entry, path)
                                                 for entry in IMAGE_ENTRIES
                                                 for path in files])
    assert len(reports) == len(IMAGE_ENTRIES) * len(files)
    for report in reports:
        error = report['error'] or ''
        name = report['file']
        if report['entry'] == 'app_upload':  # the app names the file only
            name = name.rsplit('/', 1)[-1]
        if report['entry'] == 'dataset':  # copied over the first picture
            name = '/img/'
        assert name in error, report
        assert files[type(tmp_path)(report['file'])] in error, report
    assert grown < 200, grown
