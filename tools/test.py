# Copyright (c) samref contributors. All rights reserved.
"""Evaluate a model; ``--interactive`` runs the click protocol.

    python tools/test.py CONFIG CHECKPOINT --interactive [--work-dir DIR] \
        [--show-dir DIR] [--first-prompt box]
"""
import argparse
import os
import os.path as osp
from typing import List

from mmengine.config import Config, DictAction

from samref.engine import build_runner, job_config
from samref.utils import release_process_group


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a samref model (mmseg-style test script)')
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where to save logs, results.json and the mIoU plot; '
        'default ./work_dirs/<config name>')
    parser.add_argument(
        '--interactive',
        action='store_true',
        help='evaluate with the click protocol (InteractiveTestLoop + '
        'NoCMetric); the eval configs under configs/sam and '
        'configs/samref select it already')
    parser.add_argument(
        '--datasets',
        nargs='+',
        metavar='NAME[=DATA_ROOT]',
        help='evaluate on these benchmarks together, one table row each '
        '(configs/_base_/datasets/eval_<NAME>.py, e.g. grabcut berkeley '
        'davis sbd), optionally with their data roots; implies '
        '--interactive')
    parser.add_argument(
        '--num-clicks',
        type=int,
        help='clicks per object (default: the config\'s, 20)')
    parser.add_argument(
        '--first-prompt',
        choices=['click', 'box'],
        help='start each object with its first click (the click protocol, '
        'the default) or with its ground-truth bounding box (the box-first '
        'protocol; the clicks follow, NoC counts the box as the first '
        'interaction)')
    parser.add_argument(
        '--embedding-cache',
        metavar='DIR',
        help='on-disk image-embedding cache; a second evaluation of the '
        'same data and encoder skips the image encoder')
    parser.add_argument(
        '--show-dir',
        metavar='DIR',
        help='write one picture per object: the ground truth and the mask '
        'after chosen clicks, clicks drawn, IoU in the captions, SAM-REF\'s '
        'PatchDiff window; implies --interactive')
    parser.add_argument(
        '--show-clicks',
        nargs='+',
        type=int,
        default=[1, 3, 5, 10, 20],
        metavar='K',
        help='clicks after which --show-dir draws the mask '
        '(default: 1 3 5 10 20)')
    parser.add_argument(
        '--show-num',
        type=int,
        metavar='N',
        help='draw only the first N objects (default: all)')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='fail when the checkpoint differs from the model in any key '
        'or shape (without it, differences are logged; a checkpoint that '
        'provides less than half of the weights fails anyway)')
    parser.add_argument(
        '--drop-foreign-objects',
        action='store_true',
        help='load a checkpoint that holds numpy values or other objects '
        'beyond tensors and plain data (one of another mmengine project), '
        'each replaced by an inert placeholder (refused without it)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'test_dataloader.dataset.data_root=../shared/data/GrabCut')
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


EVAL_CONFIGS = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', 'configs', '_base_', 'datasets')


def use_datasets(cfg: Config, specs: List[str]) -> None:
    """Evaluate on several benchmarks at once (a ``ConcatDataset``).

    The config's own test pipeline and loader settings are kept when it has
    them; otherwise those of ``configs/_base_/datasets/interactive_eval.py``.

    Args:
        cfg (Config): The config, updated in place.
        specs (list[str]): ``NAME`` or ``NAME=DATA_ROOT`` per benchmark.
    """
    datasets = []
    loader = cfg.get('test_dataloader')
    for spec in specs:
        name, _, data_root = spec.partition('=')
        path = osp.join(EVAL_CONFIGS, f'eval_{name}.py')
        if not osp.isfile(path):
            known = sorted(f[len('eval_'):-len('.py')]
                           for f in os.listdir(EVAL_CONFIGS)
                           if f.startswith('eval_'))
            raise SystemExit(f'--datasets: no benchmark {name!r} '
                             f'({path}); choose from {known}')
        eval_loader = Config.fromfile(path).test_dataloader
        dataset = eval_loader.dataset
        if loader is not None and 'pipeline' in loader.get('dataset', {}):
            dataset.pipeline = loader.dataset.pipeline
        if data_root:
            dataset.data_root = data_root
        datasets.append(dataset)
    if loader is None:
        loader = eval_loader
    # The benchmarks differ in their names only.
    loader.dataset = dict(
        type='ConcatDataset', datasets=datasets, ignore_keys=['dataset_name'])
    cfg.test_dataloader = loader


def use_interactive_loop(cfg: Config, args: argparse.Namespace) -> None:
    """Select the click protocol and its command-line settings."""
    test_cfg = dict(cfg.get('test_cfg') or {})
    if test_cfg.get('type') != 'InteractiveTestLoop':
        test_cfg = dict(type='InteractiveTestLoop', num_clicks=20)
    if args.num_clicks is not None:
        test_cfg['num_clicks'] = args.num_clicks
    if args.first_prompt is not None:
        test_cfg['first_prompt'] = args.first_prompt
    if args.embedding_cache:
        test_cfg['embedding_cache'] = args.embedding_cache
    if args.show_dir:
        test_cfg.update(
            show_dir=args.show_dir,
            show_clicks=args.show_clicks,
            show_max_objects=args.show_num)
    cfg.test_cfg = test_cfg
    evaluator = cfg.get('test_evaluator')
    if not evaluator or evaluator.get('type') != 'NoCMetric':
        cfg.test_evaluator = dict(type='NoCMetric')
    cfg.test_evaluator.setdefault('output_dir', cfg.work_dir)
    cfg.test_evaluator.setdefault('label',
                                  osp.splitext(osp.basename(args.config))[0])


def main() -> None:
    args = parse_args()
    cfg = job_config(args.config, args.launcher, args.cfg_options,
                     args.work_dir)
    cfg.load_from = args.checkpoint
    if args.strict:
        cfg.strict_load = True
    if args.drop_foreign_objects:
        cfg.drop_foreign_objects = True
    if args.datasets:
        use_datasets(cfg, args.datasets)
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'{args.config} has no test_dataloader: use an '
                         'eval config (e.g. configs/sam/sam_vit-b_davis.py) '
                         'or --datasets')
    is_interactive = args.interactive or args.datasets or args.show_dir or (
        cfg.get('test_cfg') or {}).get('type') == 'InteractiveTestLoop'
    if is_interactive:
        use_interactive_loop(cfg, args)
    elif (args.num_clicks is not None or args.embedding_cache
          or args.first_prompt is not None):
        raise SystemExit('--num-clicks, --first-prompt and --embedding-cache '
                         'need --interactive')
    runner = build_runner(cfg)
    runner.test()
    release_process_group()


if __name__ == '__main__':
    main()
