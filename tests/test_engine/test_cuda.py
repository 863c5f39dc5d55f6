# Copyright (c) samref contributors. All rights reserved.
"""The two everyday commands and the per-click path on an NVIDIA GPU.

Skipped without one (``tests/conftest.py``); ``make test-gpu`` runs them.
The GrabCut test reads ``$SAMREF_GRABCUT`` (default ``../shared/data/
GrabCut``) and skips when it is absent.
"""
import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from samref.apis import padded_input
from samref.datasets import make_shapes_dataset
from samref.utils import load_checkpoint_file
from testing_utils import CONFIG_DIR, REPO_ROOT, SHARED_DATA, build_from_config

pytestmark = pytest.mark.cuda

MODELS = {
    'sam': 'sam/sam_vit-tiny.py',
    'samref': 'samref/samref_vit-tiny.py',
    'focsam': 'focsam/focsam_vit-tiny.py',
}
STAGES = {
    'stage1': CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py',
    'stage2': CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py',
    'focsam': CONFIG_DIR / 'focsam' / 'focsam_vit-tiny_256_shapes.py',
}
CLICKS = [(300.0, 400.0, 1), (520.0, 380.0, 0), (280.0, 600.0, 1),
          (640.0, 300.0, 0)]


@pytest.fixture
def strict_float32():
    """No TF32 in convolutions and matrix products, so that CPU and GPU
    compute the same thing."""
    conv, matmul = (torch.backends.cudnn.allow_tf32,
                    torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = conv
    torch.backends.cuda.matmul.allow_tf32 = matmul


@pytest.mark.parametrize('name', sorted(MODELS))
@torch.no_grad()
def test_click_logits_on_cuda_equal_the_cpus(name, strict_float32):
    torch.manual_seed(0)
    cpu = build_from_config(MODELS[name]).eval()
    gpu = copy.deepcopy(cpu).cuda()
    runs = {}
    for model in (cpu, gpu):
        device = next(model.parameters()).device
        features = model.encode_image(padded_input(model, 0))
        outputs, steps = None, []
        for k in range(1, len(CLICKS) + 1):
            points = torch.tensor([[c[:2] for c in CLICKS[:k]]], device=device)
            labels = torch.tensor([[c[2] for c in CLICKS[:k]]], device=device)
            outputs = model.interact(features, points, labels, outputs)
            steps.append((outputs.prediction_logits.cpu(), outputs.branch))
        runs[device.type] = steps
    for (cpu_logits, cpu_branch), (gpu_logits,
                                   gpu_branch) in zip(runs['cpu'],
                                                      runs['cuda']):
        assert cpu_branch == gpu_branch
        torch.testing.assert_close(
            gpu_logits, cpu_logits, atol=2e-3, rtol=2e-3)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return str(
        make_shapes_dataset(str(tmp_path_factory.mktemp('shapes')), 6, seed=3))


def train_command(config, shapes, work_dir, iters, interval, *extra):
    options = {
        'train_dataloader.dataset.data_root': shapes,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': iters,
        'param_scheduler.0.end': 1,
        'param_scheduler.1.begin': 1,
        'param_scheduler.1.end': iters,
        'default_hooks.checkpoint.interval': interval,
        'default_hooks.logger.interval': 1,
        'work_dir': str(work_dir),
        'load_from': None,
        'val_cfg': None,
        'val_dataloader': None,
        'val_evaluator': None,
    }
    return [
        sys.executable,
        str(REPO_ROOT / 'tools' / 'train.py'),
        str(config), *extra, '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]


@pytest.mark.parametrize('amp', [None, 'float16', 'bfloat16'])
@pytest.mark.parametrize('stage', sorted(STAGES))
def test_two_training_iterations_on_cuda(shapes, tmp_path, stage, amp):
    if amp == 'bfloat16' and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bfloat16')
    extra = [] if amp is None else ['--amp', '--amp-dtype', amp]
    proc = subprocess.run(
        train_command(STAGES[stage], shapes, tmp_path, 2, 2, *extra),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = next(tmp_path.rglob('*.log')).read_text()
    # mmengine logs the GPU memory of each iteration on CUDA.
    losses = re.findall(
        r'Iter\(train\) \[2/2\].*? memory: \d+.*? loss: '
        r'(\S+)', log)
    assert losses and all(float(v) == float(v) for v in losses), log[-2000:]
    checkpoint = load_checkpoint_file(tmp_path / 'iter_2.pth')
    assert checkpoint['meta']['iter'] == 2


def test_killed_cuda_run_resumes_at_its_iteration(shapes, tmp_path):
    """mmengine maps the checkpoint onto the GPU when it resumes."""
    command = train_command(STAGES['stage2'], shapes, tmp_path, 6, 2)
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (tmp_path / 'last_checkpoint').exists():
        assert proc.poll() is None, 'training ended before its checkpoint'
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = load_checkpoint_file(
        (tmp_path / 'last_checkpoint').read_text().strip())
    resumed = subprocess.run(
        command + ['--resume'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = sorted(tmp_path.rglob('*.log'))[-1].read_text()
    assert re.search(rf'resumed epoch: 0, iter: {last["meta"]["iter"]}\b', log)
    assert load_checkpoint_file(tmp_path / 'iter_6.pth')['meta']['iter'] == 6


def test_interactive_test_with_cache_and_pictures_on_grabcut(tmp_path):
    grabcut = Path(os.environ.get('SAMREF_GRABCUT', SHARED_DATA / 'GrabCut'))
    if not (grabcut / 'data_GT').is_dir():
        pytest.skip(f'no GrabCut copy at {grabcut} (set SAMREF_GRABCUT)')
    torch.manual_seed(0)
    checkpoint = tmp_path / 'sam_tiny.pth'
    torch.save(build_from_config(MODELS['sam']).state_dict(), checkpoint)
    results = []
    for run in ('cold', 'warm'):
        work_dir = tmp_path / run
        proc = subprocess.run([
            sys.executable,
            str(REPO_ROOT / 'tools' / 'test.py'),
            str(CONFIG_DIR / MODELS['sam']),
            str(checkpoint), '--interactive', '--datasets',
            f'grabcut={grabcut}', '--num-clicks', '3', '--embedding-cache',
            str(tmp_path / 'cache'), '--show-dir',
            str(work_dir / 'show'), '--work-dir',
            str(work_dir), '--cfg-options',
            'test_dataloader.dataset.datasets.0.indices=3'
        ],
                              cwd=REPO_ROOT,
                              capture_output=True,
                              text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(
            json.loads((work_dir / 'results.json').read_text())['samples'])
        assert len(list((work_dir / 'show').glob('*.png'))) == 3
    assert '3 hits' in proc.stdout + proc.stderr
    assert [s['ious'] for s in results[0]] == [s['ious'] for s in results[1]]


def test_spc_and_sat_benchmark_on_cuda(tmp_path):
    proc = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'analysis_tools' / 'benchmark_spc.py'),
        str(CONFIG_DIR / MODELS['sam']),
        str(CONFIG_DIR / MODELS['samref']), '--device', 'cuda', '--samples',
        '2', '--sat', '4'
    ],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'SAT' in proc.stdout and 'cuda' in proc.stdout
