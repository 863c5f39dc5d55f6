# Copyright (c) samref contributors. All rights reserved.
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

from samref.apis import init_model
from samref.datasets import make_shapes_dataset
from samref.utils import load_checkpoint_file, load_tensor_file
from testing_utils import CONFIG_DIR, REPO_ROOT

STAGE1 = CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'
STAGE2 = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'
EMBEDDINGS = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2_embeddings.py'


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return str(
        make_shapes_dataset(str(tmp_path_factory.mktemp('shapes')), 6, seed=3))


def options(shapes, work_dir, iters=2, interval=None):
    """A short run on the fixture shapes, two images per step."""
    return {
        'train_dataloader.dataset.data_root': shapes,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': iters,
        'param_scheduler.0.end': 1,
        'param_scheduler.1.begin': 1,
        'param_scheduler.1.end': iters,
        'default_hooks.checkpoint.interval': interval or iters,
        'default_hooks.logger.interval': 1,
        'work_dir': str(work_dir),
        'load_from': None,
        # No validation: these runs check training (InteractiveValLoop has
        # its own tests).
        'val_cfg': None,
        'val_dataloader': None,
        'val_evaluator': None,
    }


def build_runner(config, overrides, **extra):
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(overrides)
    cfg.merge_from_dict(extra)
    cfg.experiment_name = f'train_{os.path.basename(overrides["work_dir"])}'
    return RUNNERS.build(cfg)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_modules(before, after):
    return {
        k.split('.')[0]
        for k in before
        if not torch.equal(before[k], after[k]) and 'num_batches' not in k
    }


def test_each_stage_trains_only_its_modules(shapes, tmp_path):
    # Stage 1 as the real configs set it: SAM's encoders frozen (so without
    # the demo's loss on the image embeddings).
    runner = build_runner(
        STAGE1, options(shapes, tmp_path / 's1'), **{
            'model.frozen_modules': ('image_encoder', 'prompt_encoder'),
            'model.losses':
            dict(
                _delete_=True,
                decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl'))
        })
    before = snapshot(runner.model)
    runner.train()
    assert changed_modules(before, snapshot(runner.model)) == {'mask_decoder'}
    stage1 = str(tmp_path / 's1' / 'iter_2.pth')
    runner = build_runner(
        STAGE2, options(shapes, tmp_path / 's2'), load_from=stage1)
    runner.load_or_resume()
    before = snapshot(runner.model)
    runner.train()
    after = snapshot(runner.model)
    assert changed_modules(before,
                           after) == {'global_refiner', 'patch_refiner'}
    # SAM's weights are the stage-1 ones.
    stage1_weights = load_checkpoint_file(stage1)['state_dict']
    for key, value in stage1_weights.items():
        assert torch.equal(after[key], value), key


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def cfg_options(mapping):
    return [f'{k}={v}' for k, v in mapping.items()]


@pytest.mark.parametrize('config', [STAGE1, STAGE2], ids=['stage1', 'stage2'])
def test_two_gloo_processes_end_with_identical_weights(shapes, tmp_path,
                                                       config):
    # Stage 1 leaves SAM's IoU head and multimask tokens without gradient.
    probe = tmp_path / 'probe.py'
    probe.write_text(f'''
import hashlib, json, os, sys
import torch.distributed as dist
from mmengine.config import Config
from mmseg.registry import RUNNERS
from samref.utils.dist import prepare_cpu_distributed, release_process_group
cfg = Config.fromfile({str(config)!r})
cfg.merge_from_dict(json.loads(sys.argv[1]))
cfg.launcher = 'pytorch'
prepare_cpu_distributed(cfg)
runner = RUNNERS.build(cfg)
runner.train()
model = runner.model.module
digest = hashlib.sha1()  # parameters (batch-norm statistics are per rank)
for key, value in sorted(model.named_parameters()):
    digest.update(key.encode() + value.detach().numpy().tobytes())
with open(os.path.join(cfg.work_dir, f'rank{{dist.get_rank()}}.txt'),
          'w') as f:
    f.write(f'{{digest.hexdigest()}} {{runner.seed}}')
release_process_group()
''')
    work_dir = tmp_path / 'dist'
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}',
        str(probe),
        json.dumps(options(shapes, work_dir, iters=2))
    ],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests, seeds = zip(*((work_dir / f'rank{r}.txt').read_text().split()
                           for r in (0, 1)))
    assert digests[0] == digests[1]
    # Each rank draws its own clicks (seed + rank), DDP keeps the weights
    # equal.
    assert int(seeds[1]) == int(seeds[0]) + 1
    log = next(work_dir.rglob('*.log')).read_text()
    assert 'Distributed training: True' in log


def test_killed_run_resumes_at_its_iteration(shapes, tmp_path):
    work_dir = tmp_path / 'resume'
    command = [
        sys.executable,
        str(REPO_ROOT / 'tools' / 'train.py'),
        str(STAGE2), '--cfg-options'
    ] + cfg_options(options(shapes, work_dir, iters=6, interval=2))
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    # mmengine names a checkpoint in `last_checkpoint` once it is written.
    deadline = time.time() + 300
    while not (work_dir / 'last_checkpoint').exists():
        assert proc.poll() is None, 'training ended before its checkpoint'
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work_dir / 'iter_6.pth').exists()
    # The checkpoint mmengine resumes from: the last one completely written.
    last_path = (work_dir / 'last_checkpoint').read_text().strip()
    last = load_checkpoint_file(last_path)
    resumed_from = last['meta']['iter']
    subprocess.run(
        command + ['--resume'],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=400)
    logs = sorted(work_dir.rglob('*.log'))
    assert re.search(rf'resumed epoch: 0, iter: {resumed_from}\b',
                     logs[-1].read_text())
    final = load_checkpoint_file(work_dir / 'iter_6.pth')
    assert final['meta']['iter'] == 6
    # The optimizer went on from the saved state: AdamW's step counts add up.
    steps = [s['step'] for s in final['optimizer']['state'].values()]
    assert steps and all(int(s) == 6 for s in steps)
    saved_steps = [s['step'] for s in last['optimizer']['state'].values()]
    assert all(int(s) == resumed_from for s in saved_steps)


def test_pre_extracted_embeddings_replace_the_encoder(shapes, tmp_path):
    torch.manual_seed(0)
    weights = init_model(EMBEDDINGS).state_dict()
    checkpoint = tmp_path / 'weights.pth'
    torch.save(weights, checkpoint)
    out = tmp_path / 'embeddings'
    tool = [
        sys.executable,
        str(REPO_ROOT / 'tools' / 'extract_embeddings.py'),
        str(EMBEDDINGS), '--out',
        str(out), '--checkpoint',
        str(checkpoint), '--cfg-options',
        f'train_dataloader.dataset.data_root={shapes}'
    ]
    subprocess.run(
        tool, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    index = json.loads((out / 'index.json').read_text())
    assert len(index['files']) == len(os.listdir(os.path.join(shapes, 'img')))
    assert all(
        set(views) == {'orig', 'flip-horizontal'}
        for views in index['files'].values())
    store = out / index['meta']['encoder'][:20]
    first = next(iter(index['files'].values()))['orig']['key']
    assert first.endswith('-float16')
    tensor = load_tensor_file(store / f'{first}.safetensors')
    assert tensor.dtype == torch.float16 and tensor.shape == (128, 32, 32)
    # One file per picture and view (the image files of a picture's objects
    # share its embeddings).
    mtimes = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(mtimes) == 2 * 6 < 2 * len(index['files'])
    assert all((store / f'{view["key"]}.safetensors').is_file()
               for views in index['files'].values() for view in views.values())
    # A second run finds every file and writes none again (resumable).
    subprocess.run(
        tool, cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == mtimes

    overrides = options(shapes, tmp_path / 'with_embeddings')
    overrides['train_dataloader.dataset.pipeline.5.embedding_dir'] = str(out)
    runner = build_runner(EMBEDDINGS, overrides, load_from=str(checkpoint))
    calls = []
    runner.model.image_encoder.register_forward_hook(
        lambda *args: calls.append(1))
    runner.train()
    assert calls == []

    # Another encoder's embeddings are refused before training starts.
    weights['image_encoder.neck.0.weight'] += 1.0
    other = tmp_path / 'other.pth'
    torch.save(weights, other)
    overrides['work_dir'] = str(tmp_path / 'other_encoder')
    runner = build_runner(EMBEDDINGS, overrides, load_from=str(other))
    with pytest.raises(RuntimeError, match='another image encoder'):
        runner.train()
