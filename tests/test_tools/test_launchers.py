# Copyright (c) samref contributors. All rights reserved.
"""Distributed launches on machines without a GPU."""
import json
import os
import subprocess
import sys

import pytest
import torch

from samref.datasets import make_shapes_dataset
from samref.utils import free_port
from testing_utils import CONFIG_DIR, REPO_ROOT

EMBEDDINGS = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2_embeddings.py'


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_launcher_says_up_front_when_python_lacks_torch(script):
    args = ['configs/x.py', '2'] if script == 'dist_train.sh' else \
        ['configs/x.py', 'x.pth', '2']
    proc = subprocess.run(['bash', f'tools/{script}', *args],
                          cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHON='/bin/false'),
                          capture_output=True,
                          text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert 'cannot import torch' in proc.stderr
    assert 'source .venv/bin/activate' in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_extract_embeddings_under_torchrun_on_cpu(tmp_path):
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 3, seed=2)
    out = tmp_path / 'embeddings'
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}',
        str(REPO_ROOT / 'tools' / 'extract_embeddings.py'),
        str(EMBEDDINGS), '--out',
        str(out), '--launcher', 'pytorch', '--cfg-options',
        f'train_dataloader.dataset.data_root={shapes}', 'load_from=None'
    ],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = json.loads((out / 'index.json').read_text())
    images = len(os.listdir(os.path.join(shapes, 'img')))
    # Both processes' images are in the one index.
    assert len(index['files']) == images
