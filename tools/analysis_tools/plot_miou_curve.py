# Copyright (c) samref contributors. All rights reserved.
"""Plot mIoU against clicks from one or more ``results.json`` files.

One curve per file (model) and dataset::

    python tools/analysis_tools/plot_miou_curve.py \\
        work_dirs/sam_vit-b_davis/results.json \\
        work_dirs/samref_vit-b_davis/results.json --out davis.png
"""
import argparse
import json
import os.path as osp
from collections import OrderedDict
from typing import List, Optional

from samref.visualization import plot_miou_curves


def load_curves(path: str, label: Optional[str]) -> 'OrderedDict':
    """The mIoU curves of every dataset in a results file.

    Args:
        path (str): A ``results.json`` written by the interactive
            evaluation.
        label (str, optional): Name of the model; the file's own label (or
            its folder's name) when None.

    Returns:
        OrderedDict: ``'<label> <dataset>'`` to mIoU after each click.
    """
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
        summary = content['summary']
        num_clicks = content['num_clicks']
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f'cannot read interactive results from {path}: '
                         f'{error}') from None
    label = label or content.get('label') or osp.basename(
        osp.dirname(osp.abspath(path)))
    return OrderedDict(
        (f'{label} {name}',
         [metrics[f'mIoU@{k}'] for k in range(1, num_clicks + 1)])
        for name, metrics in summary.items())


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', nargs='+', help='results.json files')
    parser.add_argument('--labels', nargs='+', help='one name per file')
    parser.add_argument('--out', default='miou_curve.png', help='PNG file')
    parser.add_argument('--title', help='figure title')
    args = parser.parse_args(argv)
    labels = args.labels or [None] * len(args.results)
    if len(labels) != len(args.results):
        raise SystemExit('give one label per results file')
    curves: 'OrderedDict' = OrderedDict()
    for path, label in zip(args.results, labels):
        curves.update(load_curves(path, label))
    out = plot_miou_curves(curves, args.out, args.title)
    print(f'plot written to {out}')
    return out


if __name__ == '__main__':
    main()
