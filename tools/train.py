# Copyright (c) samref contributors. All rights reserved.
"""Train a model (mmseg-style script).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--amp-dtype bfloat16]
    bash tools/dist_train.sh CONFIG GPUS [train.py options]
"""
import argparse
import logging
import os

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log

from samref.engine import build_runner, job_config
from samref.utils import release_process_group


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a samref model')
    parser.add_argument('config', help='train config file')
    parser.add_argument(
        '--work-dir',
        help='where to save logs and checkpoints; default '
        './work_dirs/<config name>')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='resume from the latest checkpoint in the work dir (or from '
        'load_from when it is set)')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='fail when load_from differs from the model in any key or '
        'shape (without it, differences are logged)')
    parser.add_argument(
        '--drop-foreign-objects',
        action='store_true',
        help='load a checkpoint that holds numpy values or other objects '
        'beyond tensors and plain data (one of another mmengine project), '
        'each replaced by an inert placeholder (refused without it)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed-precision training (needs a GPU): the whole model, '
        'refiners included, under autocast')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default='float16',
        help='precision of --amp (default float16, with a dynamic loss '
        'scale; bfloat16 where the GPU has it)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_dataloader.batch_size=2')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = job_config(args.config, args.launcher, args.cfg_options,
                     args.work_dir)
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a GPU: mmengine\'s AmpOptimWrapper '
                             'does not run on the CPU')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log(
                'AMP is already enabled in the config',
                logger='current',
                level=logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
            cfg.optim_wrapper.dtype = args.amp_dtype
    cfg.resume = args.resume
    if args.strict:
        cfg.strict_load = True
    if args.drop_foreign_objects:
        cfg.drop_foreign_objects = True
    runner = build_runner(cfg)
    runner.train()
    release_process_group()


if __name__ == '__main__':
    main()
