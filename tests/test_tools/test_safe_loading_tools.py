# Copyright (c) samref contributors. All rights reserved.
"""The command-line tools under the loading policy, as a user runs them."""
import subprocess
import sys

import pytest
import torch

from malicious_files import ATTACKS
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
def test_test_script_refuses_code_carrying_checkpoint(
        tmp_path, shapes, sam_weights, attack):
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
def test_train_resume_refuses_code_carrying_load_from(
        tmp_path, shapes, attack):
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
