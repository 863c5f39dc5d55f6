# Copyright (c) samref contributors. All rights reserved.
"""The steps the demos share: generate the shapes, train a config quietly
with a progress line every few iterations, evaluate it, read, print and
plot the results.

``make demo`` (``demo/shapes_demo.py``) and ``make demo-real``
(``demo/real_data_demo.py``) are made of these; the configs are the
repository's (``configs/demo``), relative to the working directory.
"""
import itertools
import json
import multiprocessing
import os
import os.path as osp
import time
from concurrent.futures import ProcessPoolExecutor
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from terminaltables import AsciiTable

from ..datasets import make_shapes_dataset
from ..engine.runner import build_runner
from ..utils.dist import free_port, release_process_group
from ..visualization import plot_miou_curves

STAGE1 = 'configs/demo/sam_tiny_256_stage1.py'
STAGE2 = 'configs/demo/samref_tiny_256_stage2.py'
SHOW_CLICKS = (1, 3, 5)
# Numbers the runs of a process (their experiment and visualizer names).
RUN_NUMBERS = itertools.count()


class ProgressPrinter(Hook):
    """Print one compact line every ``interval`` training iterations."""

    def __init__(self, title: str, interval: int = 25) -> None:
        self.title = title
        self.interval = interval
        self.start = time.perf_counter()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        done = runner.iter + 1
        if done % self.interval and done != runner.max_iters:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (runner.max_iters - done)
        values = {k: float(v.detach()) for k, v in (outputs or {}).items()}
        losses = ' '.join(f'{k[5:]}={v:.3f}' for k, v in values.items()
                          if k.startswith('loss_'))
        print(
            f'  [{self.title}] iter {done:4d}/{runner.max_iters}  '
            f'{losses}  clicks={values.get("clicks", 0):.1f}  '
            f'eta {eta:4.0f} s',
            flush=True)


def run(config: str,
        work_dir: str,
        overrides: dict,
        title: str,
        test: bool = False,
        checkpoint: Optional[str] = None,
        show_dir: Optional[str] = None,
        show_num: int = 0,
        launcher: str = 'none') -> int:
    """Train or test one config quietly, with progress lines (from the
    first process of a distributed job).

    Returns:
        int: The number of training iterations of the config (0 for a
        test).
    """
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(overrides)
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    cfg.log_level = 'WARNING'
    # mmengine hands back an existing visualizer of the same name, which
    # would write this run's logs into an earlier run's folder: a name per
    # run of the process.
    cfg.experiment_name = \
        f'{title}_{"test" if test else "train"}_{next(RUN_NUMBERS)}'
    cfg.visualizer.name = cfg.experiment_name
    if test:
        cfg.load_from = checkpoint
        cfg.test_evaluator.output_dir = work_dir
        cfg.test_evaluator.label = title
        if show_dir:
            cfg.test_cfg.update(
                show_dir=show_dir,
                show_clicks=SHOW_CLICKS,
                show_max_objects=show_num)
    runner = build_runner(cfg)
    if test:
        runner.test()
        return 0
    if is_main_process():
        runner.register_hook(ProgressPrinter(title))
    runner.train()
    return runner.max_iters


def run_distributed(job: dict, processes: int) -> int:
    """Train one config data-parallel in worker processes: gloo processes
    on the CPU (one GPU each where there are GPUs).

    The demo's tiny models are many small operations that a second thread
    of one process barely speeds up; ``processes`` gloo processes of
    ``threads // processes`` threads each, every one with its share of
    each batch, keep the cores busier. The batch, the learning rate and
    the samples of each step are the config's (mmengine's samplers deal
    the same shuffled indices out to the processes); the random draws of
    augmentation and click simulation are the processes' own (the
    config's ``randomness``), so the result differs from a single
    process's but repeats for the same number of processes.

    Args:
        job (dict): Keyword arguments of :func:`run` for training
            (``config``, ``work_dir``, ``overrides``, ``title``).
        processes (int): Worker processes; the training batch size must
            split evenly among them.

    Returns:
        int: The number of training iterations of the config.
    """
    if processes < 2:
        raise ValueError(f'processes must be >= 2, got {processes}')
    cfg = Config.fromfile(job['config'])
    cfg.merge_from_dict(job['overrides'])
    batch_size = cfg.train_dataloader.batch_size
    if batch_size % processes:
        raise ValueError(
            f'{job["config"]}: train_dataloader.batch_size {batch_size} '
            f'does not split among {processes} processes')
    threads = max(1, torch.get_num_threads() // processes)
    job = dict(
        job,
        launcher='pytorch',
        overrides={
            **job['overrides'], 'train_dataloader.batch_size':
            batch_size // processes
        })
    torch.multiprocessing.start_processes(
        train_process,
        args=(job, processes, threads, free_port()),
        nprocs=processes,
        start_method='spawn')
    return cfg.train_cfg.max_iters


def train_process(rank: int, job: dict, world_size: int, threads: int,
                  port: int) -> None:
    """One process of :func:`run_distributed`."""
    os.environ.update(
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size))
    torch.set_num_threads(threads)
    run(**job)
    release_process_group()


def evaluate(jobs: Sequence[dict], processes: int = 2) -> List[dict]:
    """Evaluate several configs, in worker processes of one thread each.

    A click of the demo's tiny models is many small operations that a
    second thread barely speeds up, so two single-threaded evaluations at
    once finish sooner than one after the other with two threads. Each
    evaluation is repeatable for a given number of processes (one thread
    each); a single process keeps the caller's threads.

    Args:
        jobs (Sequence[dict]): Keyword arguments of :func:`run` for a test
            (``config``, ``work_dir``, ``overrides``, ``title``,
            ``checkpoint`` and optionally ``show_dir`` and ``show_num``).
        processes (int): Worker processes; 1 runs the jobs here, one after
            the other. Defaults to 2.

    Returns:
        list[dict]: :func:`read_summary` of each job, in order.
    """
    if processes < 1:
        raise ValueError(f'processes must be >= 1, got {processes}')
    if processes == 1:
        return [evaluate_one(job) for job in jobs]
    with ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context('spawn'),
            initializer=torch.set_num_threads,
            initargs=(1, )) as pool:
        return list(pool.map(evaluate_one, jobs))


def evaluate_one(job: dict) -> dict:
    """:func:`run` one test job and read its summary."""
    run(**job, test=True)
    return read_summary(job['work_dir'])


def read_summary(work_dir: str, dataset: str = 'Shapes') -> dict:
    """The summary row of ``dataset`` in a test run's ``results.json``."""
    with open(osp.join(work_dir, 'results.json'), encoding='utf-8') as f:
        return json.load(f)['summary'][dataset]


def print_table(summaries: dict) -> None:
    """Print NoC, NoF, mIoU after 1, 5, 10 and 20 clicks and SPC, a row per
    model."""
    rows = [[
        'model', 'NoC85', 'NoC90', 'NoC95', 'NoF85', 'NoF90', 'NoF95',
        '1-mIoU', '5-mIoU', '10-mIoU', '20-mIoU', 'SPC (s)'
    ]]
    for title, s in summaries.items():
        rows.append([title] +
                    [f'{s[k]:.2f}' for k in ('NoC85', 'NoC90', 'NoC95')] +
                    [s[k] for k in ('NoF85', 'NoF90', 'NoF95')] +
                    [f'{100 * s[f"mIoU@{k}"]:.2f}'
                     for k in (1, 5, 10, 20)] + [f'{s["SPC"]:.3f}'])
    print(AsciiTable(rows).table)


def plot_summaries(summaries: dict, out_file: str, title: str) -> str:
    """Plot mIoU per interaction of each model, its object count in the
    legend."""
    return plot_miou_curves(
        {
            f'{name} ({s["num_objects"]} objects)':
            [s[f'mIoU@{k}'] for k in range(1, 21)]
            for name, s in summaries.items()
        }, out_file, title,
        'interactions (clicks; box first: the box, then clicks)')


def make_shapes(work_dir: str,
                train_images: int = 240,
                val_images: int = 30) -> dict:
    """Generate the demo's pictures under ``<work_dir>/shapes``.

    Returns:
        dict: The overrides that point the configs' dataloaders at them.
    """
    data = osp.join(work_dir, 'shapes')
    print(f'  {train_images} + {val_images} pictures into {data}', flush=True)
    make_shapes_dataset(osp.join(data, 'train'), train_images, seed=0)
    make_shapes_dataset(osp.join(data, 'val'), val_images, seed=1)
    return {
        'train_dataloader.dataset.data_root': osp.join(data, 'train'),
        'test_dataloader.dataset.data_root': osp.join(data, 'val'),
    }


def train(config: str,
          run_dir: str,
          title: str,
          overrides: dict,
          processes: int = 1) -> str:
    """Train ``config`` into ``run_dir``, in this process or data-parallel
    in ``processes`` worker processes (:func:`run_distributed`).

    Returns:
        str: The last checkpoint.
    """
    # The configs validate on 20 val objects at the end of training; the
    # demo evaluates all of them right after, so it skips that.
    no_validation = dict(val_cfg=None, val_dataloader=None, val_evaluator=None)
    job = dict(
        config=config,
        work_dir=run_dir,
        overrides={
            **overrides,
            **no_validation
        },
        title=title)
    done = run(**job) if processes == 1 else run_distributed(job, processes)
    return osp.join(run_dir, f'iter_{done}.pth')


def train_stage1(work_dir: str,
                 data_options: dict,
                 iters: Optional[int] = None,
                 processes: int = 1) -> str:
    """Train SAM from random weights on the pictures (stage 1).

    Args:
        work_dir (str): The demo's work dir; the run goes to ``stage1/``.
        data_options (dict): Output of :func:`make_shapes`.
        iters (int, optional): Iterations; the config's when None.
        processes (int): Data-parallel worker processes (see
            :func:`run_distributed`); 1 trains here. Defaults to 1.

    Returns:
        str: The last checkpoint.
    """
    return train(STAGE1, osp.join(work_dir, 'stage1'), 'SAM', {
        **data_options,
        **schedule_options(STAGE1, iters)
    }, processes)


def train_stage2(work_dir: str,
                 data_options: dict,
                 sam_checkpoint: str,
                 iters: Optional[int] = None,
                 processes: int = 1) -> str:
    """Train SAM-REF's refiners on the pictures, SAM frozen (stage 2).

    Args:
        work_dir (str): The demo's work dir; the run goes to ``stage2/``.
        data_options (dict): Output of :func:`make_shapes`.
        sam_checkpoint (str): The SAM of stage 1.
        iters (int, optional): Iterations; the config's when None.
        processes (int): Data-parallel worker processes (see
            :func:`run_distributed`); 1 trains here. Defaults to 1.

    Returns:
        str: The last checkpoint.
    """
    return train(
        STAGE2, osp.join(work_dir, 'stage2'), 'SAM-REF', {
            **data_options,
            **schedule_options(STAGE2, iters), 'load_from': sam_checkpoint
        }, processes)


def schedule_options(config: str, iters: Optional[int]) -> dict:
    """Overrides that shorten (or lengthen) a config's schedule to ``iters``
    iterations, scaling the warm-up with it and logging the losses at least
    once; none when ``iters`` is None."""
    if iters is None:
        return {}
    cfg = Config.fromfile(config)
    warmup = cfg.param_scheduler[0]['end']
    warmup = max(1, min(warmup, warmup * iters // cfg.train_cfg.max_iters))
    return {
        'train_cfg.max_iters':
        iters,
        'param_scheduler.0.end':
        warmup,
        'param_scheduler.1.begin':
        warmup,
        'param_scheduler.1.end':
        iters,
        'default_hooks.checkpoint.interval':
        iters,
        'default_hooks.logger.interval':
        min(iters, cfg.default_hooks.logger.interval),
    }
