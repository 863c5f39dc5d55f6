# Copyright (c) samref contributors. All rights reserved.
"""Time training steps with SAM's image encoder and with pre-extracted
embeddings, in one run, and print their ratio.

    python tools/analysis_tools/benchmark_train_step.py \\
        configs/samref/samref_vit-b_4xb4-80k_coco-lvis.py \\
        --batch-size 1 --steps 3

The batch is synthetic (random images, a synthetic object each); a step is
the model's forward with click simulation, the backward and the optimiser
update, with the config's optimiser wrapper (``--amp``: mixed precision on
a GPU, as ``tools/train.py --amp``). With embeddings the batch carries the
encoder's output, as ``LoadImageEmbedding`` provides it. The peak memory
of the steps is reported (GPU allocations, or the process's resident set on
a CPU).

``--commits`` compares commits instead: the config's training step (with
the image encoder) of each commit's code and config, in one run.

    python tools/analysis_tools/benchmark_train_step.py \\
        configs/demo/sam_tiny_256_stage1.py --commits a199b85 HEAD \\
        --batch-size 4 --steps 3 --rounds 5

Each commit is checked out into a temporary ``git worktree`` (removed at
the end), and a Python process per commit, started in its worktree,
imports that worktree's ``samref`` (Python puts the working directory first
on the import path of ``python -c``), builds the model from the worktree's
config and waits. The processes then time ``--steps`` steps each in turn,
``--rounds`` times, so that a load which changes during the run reaches
every commit alike; the table gives each commit's median over all its
steps and its ratio to the first commit's.
"""
import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from terminaltables import AsciiTable

import samref
from samref.apis import PeakMemory, init_model, padded_input, synthetic_object
from samref.utils.timer import synchronize


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='training-step benchmark')
    parser.add_argument('config', help='training config')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument(
        '--amp',
        choices=['float16', 'bfloat16'],
        help='mixed precision (a GPU), as tools/train.py --amp')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='overrides')
    parser.add_argument(
        '--commits',
        nargs='+',
        help='compare the training step of these commits (their code and '
        'config), the first one the reference')
    parser.add_argument(
        '--rounds',
        type=int,
        default=5,
        help='with --commits: turns of --steps steps for each commit')
    # A process of --commits, started in a commit's worktree.
    parser.add_argument('--serve', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_batch(model, batch_size: int) -> dict:
    """Random inputs with one synthetic object each, on the model's
    device."""
    inputs, samples = [], []
    for seed in range(batch_size):
        inputs.append(padded_input(model, seed)[0])
        gt = synthetic_object(model.input_size, seed)
        gt[gt < 0] = 0
        sample = SegDataSample(metainfo=dict(click_gamma=0.6))
        sample.gt_sem_seg = PixelData(
            data=torch.from_numpy(gt.astype(np.uint8))[None])
        samples.append(sample.to(inputs[-1].device))
    return dict(inputs=torch.stack(inputs), data_samples=samples)


def step_times(model, optim_wrapper, batch: dict, steps: int) -> List[float]:
    """Seconds of each of ``steps`` training steps (the clicks of step
    ``i`` drawn with numpy's seed ``i``)."""
    times = []
    device = batch['inputs'].device
    for step in range(steps):
        np.random.seed(step)
        start = time.perf_counter()
        with optim_wrapper.optim_context(model):
            losses = model(**batch, mode='loss')
        loss = sum(v for k, v in losses.items() if k.startswith('loss'))
        optim_wrapper.update_params(loss)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def time_steps(model, optim_wrapper, batch: dict,
               steps: int) -> Tuple[float, Optional[float]]:
    """Median seconds of a training step and the steps' peak memory (MB).
    """
    with PeakMemory(batch['inputs'].device) as memory:
        # The first step warms up.
        times = step_times(model, optim_wrapper, batch, steps + 1)[1:]
    return statistics.median(times), memory.peak_mb


def build(args: argparse.Namespace) -> tuple:
    """The model in training mode, its optimiser wrapper and a batch, in
    the process environment of training (``env_cfg.malloc_cfg``)."""
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    try:
        from samref.utils import apply_malloc_cfg
    except ImportError:  # the samref of an older commit (--commits)
        pass
    else:
        apply_malloc_cfg(model.cfg.get('env_cfg'))
    model.train()
    wrapper_cfg = model.cfg.optim_wrapper
    if args.amp:
        wrapper_cfg = dict(
            wrapper_cfg,
            type='AmpOptimWrapper',
            dtype=args.amp,
            loss_scale='dynamic')
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    return model, optim_wrapper, make_batch(model, args.batch_size)


def serve(args: argparse.Namespace) -> None:
    """Build, warm up with one step, then time the number of steps read
    from each line of stdin and answer with their seconds, a JSON line."""
    model, optim_wrapper, batch = build(args)
    step_times(model, optim_wrapper, batch, 1)
    print(json.dumps({'samref': osp.abspath(samref.__file__)}), flush=True)
    for line in sys.stdin:
        times = step_times(model, optim_wrapper, batch, int(line))
        print(json.dumps({'times': times}), flush=True)


def worktree_server(commit: str, tree: str,
                    argv: List[str]) -> subprocess.Popen:
    """Check ``commit`` out into ``tree`` and start this script there as a
    ``--serve`` process; the running Python's environment, the worktree's
    ``samref`` and config."""
    subprocess.run(['git', 'worktree', 'add', '--detach', tree, commit],
                   check=True,
                   capture_output=True)
    code = "import runpy, sys; runpy.run_path(sys.argv.pop(1), " \
        "run_name='__main__')"
    return subprocess.Popen(
        [sys.executable, '-c', code,
         osp.abspath(__file__)] + argv + ['--serve'],
        cwd=tree,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True)


def read_reply(server: subprocess.Popen, commit: str) -> dict:
    """The next JSON line of a ``--serve`` process."""
    for line in server.stdout:
        if line.startswith('{'):
            return json.loads(line)
    raise RuntimeError(f'the benchmark process of {commit} ended '
                       f'(exit code {server.wait()})')


def compare_commits(args: argparse.Namespace, argv: List[str]) -> List[list]:
    """Time the config's training step at each of ``args.commits`` in
    turns (see the module's docstring) and print the table."""
    commits = [
        subprocess.run(['git', 'rev-parse', '--short', commit],
                       check=True,
                       capture_output=True,
                       text=True).stdout.strip() for commit in args.commits
    ]
    times = {commit: [] for commit in commits}
    with tempfile.TemporaryDirectory(prefix='benchmark_train_step_') as tmp:
        trees = [osp.join(tmp, commit) for commit in commits]
        servers = []
        try:
            for commit, tree in zip(commits, trees):
                servers.append(worktree_server(commit, tree, argv))
                package = read_reply(servers[-1], commit)['samref']
                if not package.startswith(osp.abspath(tree) + osp.sep):
                    raise RuntimeError(f'the process of {commit} imported '
                                       f'{package}, not its worktree\'s')
            for _ in range(args.rounds):
                for commit, server in zip(commits, servers):
                    server.stdin.write(f'{args.steps}\n')
                    server.stdin.flush()
                    times[commit] += read_reply(server, commit)['times']
        finally:
            for server in servers:
                server.stdin.close()
                server.wait()
            for tree in trees:
                subprocess.run(['git', 'worktree', 'remove', '--force', tree],
                               capture_output=True)
    medians = {commit: statistics.median(times[commit]) for commit in commits}
    rows = [['commit', 'config', 'step (s, median)', f'vs {commits[0]}']]
    for commit in commits:
        rows.append([
            commit, args.config, f'{medians[commit]:.3f}',
            f'{medians[commit] / medians[commits[0]]:.2f}x'
        ])
    print(f'batch {args.batch_size}, device {args.device}, '
          f'{args.amp or "float32"}, {torch.get_num_threads()} threads, '
          f'{args.rounds} rounds of {args.steps} steps')
    print(AsciiTable(rows).table)
    return rows


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Run the benchmark and print its table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    if argv is None:
        argv = sys.argv[1:]
    args = parse_args(argv)
    if args.serve:
        serve(args)
        return []
    if args.commits:
        forwarded = argv[:]
        i = forwarded.index('--commits')
        j = i + 1 + len(args.commits)
        return compare_commits(args, forwarded[:i] + forwarded[j:])
    model, optim_wrapper, batch = build(args)
    with_encoder, encoder_peak = time_steps(model, optim_wrapper, batch,
                                            args.steps)
    with torch.no_grad():
        embeddings = model.image_encoder(batch['inputs'])
    for sample, embedding in zip(batch['data_samples'], embeddings):
        sample.image_embeddings = embedding.half().float()
    with_embeddings, embeddings_peak = time_steps(model, optim_wrapper, batch,
                                                  args.steps)

    def megabytes(peak: Optional[float]) -> str:
        return '-' if peak is None else f'{peak:.0f}'

    rows = [['training step', 'seconds (median)', 'speed-up', 'peak MB'],
            [
                'with the image encoder', f'{with_encoder:.3f}', '1.00x',
                megabytes(encoder_peak)
            ],
            [
                'with pre-extracted embeddings', f'{with_embeddings:.3f}',
                f'{with_encoder / with_embeddings:.2f}x',
                megabytes(embeddings_peak)
            ]]
    print(f'{args.config}, batch {args.batch_size}, device {args.device}, '
          f'{args.amp or "float32"}, {torch.get_num_threads()} threads')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
