# Copyright (c) samref contributors. All rights reserved.
"""Evaluate several models with the click protocol and compare them.

Every model goes through ``tools/test.py --interactive`` on the same
benchmarks (same data, same simulated clicks, same machine), one after the
other; then one table lists every model on every dataset and one plot per
dataset draws a mIoU-per-click curve per model::

    python tools/analysis_tools/compare_models.py \\
        --configs configs/sam/sam_vit-h.py configs/focsam/focsam_vit-h.py \\
                  configs/samref/samref_vit-h_4xb4-80k_coco-lvis.py \\
        --checkpoints checkpoints/sam_vit_h_4b8939.pth \\
            checkpoints/focsam_vit_h.pth \\
            work_dirs/samref_vit-h_4xb4-80k_coco-lvis/iter_80000.pth \\
        --labels SAM FocSAM SAM-REF --datasets grabcut berkeley davis sbd \\
        --work-dir work_dirs/compare

Each model's logs and ``results.json`` go to ``WORK_DIR/<label>``.
``none`` as a checkpoint evaluates random weights (seeded, so SAM's parts
are the same in every model), which is only good for timing. Results of
evaluations run elsewhere (e.g. ``tools/dist_test.sh``) are compared
without evaluating again with ``--results a/results.json b/results.json``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from terminaltables import AsciiTable

from samref.apis import init_model
from samref.visualization import plot_miou_curves

TEST_SCRIPT = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'test.py')
COLUMNS = (('NoC85', '.2f'), ('NoC90', '.2f'), ('NoC95', '.2f'),
           ('NoF90', 'd'), ('NoF95', 'd'), ('mIoU@1', '%'), ('mIoU@5', '%'),
           ('mIoU@20', '%'), ('SPC', '.3f'), ('SPC_no_encoder', 'ms'))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', help='model configs')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        help='one per config; "none" for random weights')
    parser.add_argument(
        '--labels', nargs='+', help='one name per model (default: config)')
    parser.add_argument(
        '--datasets',
        nargs='+',
        metavar='NAME[=DATA_ROOT]',
        help='benchmarks, as for tools/test.py --datasets')
    parser.add_argument(
        '--num-clicks', type=int, help='clicks per object (default 20)')
    parser.add_argument(
        '--embedding-cache',
        metavar='DIR',
        help='image-embedding cache shared by the models (the cache keys '
        'on the encoder weights)')
    parser.add_argument(
        '--results',
        nargs='+',
        help='compare these results.json files instead of evaluating')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/compare',
        help='where each model\'s evaluation and the plots go')
    return parser.parse_args(argv)


def random_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Save a config's seeded random initialisation as a checkpoint."""
    torch.manual_seed(seed)
    model = init_model(config)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def evaluate(config: str, checkpoint: str, work_dir: str,
             args: argparse.Namespace) -> str:
    """Run ``tools/test.py --interactive`` for one model.

    Returns:
        str: Its ``results.json``.
    """
    command = [
        sys.executable, TEST_SCRIPT, config, checkpoint, '--interactive',
        '--work-dir', work_dir
    ]
    if args.datasets:
        command += ['--datasets'] + args.datasets
    if args.num_clicks is not None:
        command += ['--num-clicks', str(args.num_clicks)]
    if args.embedding_cache:
        command += ['--embedding-cache', args.embedding_cache]
    print(' '.join(command), flush=True)
    if subprocess.run(command).returncode:
        raise SystemExit(f'the evaluation of {config} failed (see above)')
    return osp.join(work_dir, 'results.json')


def read_results(path: str) -> dict:
    """``summary`` and ``num_clicks`` of a ``results.json``."""
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
        return dict(
            summary=content['summary'], num_clicks=content['num_clicks'])
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f'cannot read interactive results from {path}: '
                         f'{error}') from None


def format_value(value, style: str) -> str:
    if value is None:
        return '-'
    if style == '%':
        return f'{100 * value:.2f}'
    if style == 'ms':
        return f'{1e3 * value:.1f}'
    if style == 'd':
        return str(int(value))
    return format(value, style)


def compare(results: Dict[str, dict], work_dir: str) -> List[list]:
    """Print the table and draw the plots.

    Args:
        results (dict[str, dict]): Label to :func:`read_results` output.
        work_dir (str): Where the plots go.

    Returns:
        list[list]: The table's rows.
    """
    header = ['dataset', 'model'] + [
        name.replace('SPC_no_encoder', 'SPC w/o enc (ms)').replace(
            'mIoU@', 'mIoU') for name, _ in COLUMNS
    ]
    rows = [header]
    datasets = list(
        OrderedDict.fromkeys(name for result in results.values()
                             for name in result['summary']))
    for dataset in datasets:
        curves = OrderedDict()
        for label, result in results.items():
            summary = result['summary'].get(dataset)
            if summary is None:
                continue
            rows.append([dataset, label] + [
                format_value(summary.get(name), style)
                for name, style in COLUMNS
            ])
            count = summary.get('num_objects')
            curve = label if count is None else f'{label} ({count} objects)'
            curves[curve] = [
                summary[f'mIoU@{k}']
                for k in range(1, result['num_clicks'] + 1)
            ]
        name = dataset.replace('/', '_')
        plot = plot_miou_curves(curves,
                                osp.join(work_dir, f'miou_curve_{name}.png'),
                                f'{dataset}: mIoU per click')
        print(f'{dataset}: mIoU curves in {plot}')
    print(AsciiTable(rows).table)
    return rows


def main(argv: Optional[List[str]] = None) -> List[list]:
    args = parse_args(argv)
    if bool(args.results) == bool(args.configs):
        raise SystemExit('give either --configs (to evaluate) or --results')
    sources = args.results or args.configs
    labels = args.labels or [
        osp.splitext(
            osp.basename(osp.dirname(path) if args.results else path))[0]
        for path in sources
    ]
    if len(labels) != len(sources) or len(set(labels)) != len(labels):
        raise SystemExit('give one distinct label per model')
    results: Dict[str, dict] = OrderedDict()
    if args.results:
        for label, path in zip(labels, args.results):
            results[label] = read_results(path)
    else:
        checkpoints = args.checkpoints or ['none'] * len(args.configs)
        if len(checkpoints) != len(args.configs):
            raise SystemExit('give one checkpoint (or none) per config')
        for label, config, checkpoint in zip(labels, args.configs,
                                             checkpoints):
            work_dir = osp.join(args.work_dir, label)
            if checkpoint == 'none':
                checkpoint = random_checkpoint(
                    config, osp.join(work_dir, 'random_init.pth'))
            results[label] = read_results(
                evaluate(config, checkpoint, work_dir, args))
    return compare(results, args.work_dir)


if __name__ == '__main__':
    main()
