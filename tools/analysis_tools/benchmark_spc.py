# Copyright (c) samref contributors. All rights reserved.
"""Seconds per click of one or more models, measured in one run.

For every model: ``--samples`` interactions of ``--clicks`` simulated
clicks on a random 1024 x 1024 image with a synthetic object. It reports
the median latency of a click without the image encoder (what a user feels
while clicking), SPC as the paper defines it (the encoding amortised over
the clicks), the per-stage times the model reports, ratios to the first
model and the peak memory::

    python tools/analysis_tools/benchmark_spc.py \\
        configs/sam/sam_vit-b.py configs/sam/sam_vit-tiny.py --device cpu
"""
import argparse
import statistics
from typing import List, Optional

import torch
from mmengine.config import DictAction
from terminaltables import AsciiTable

from samref.apis import PeakMemory, init_model, measure_interaction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SPC benchmark')
    parser.add_argument('configs', nargs='+', help='model configs')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        help='one checkpoint per config (default: random weights)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:N')
    parser.add_argument(
        '--clicks', type=int, default=20, help='clicks per interaction')
    parser.add_argument(
        '--samples', type=int, default=3, help='interactions per model')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides for every config')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Run the benchmark and print its table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    args = parse_args(argv)
    checkpoints = args.checkpoints or [None] * len(args.configs)
    if len(checkpoints) != len(args.configs):
        raise SystemExit('give one checkpoint per config')
    rows = [[
        'model', 'click (ms, median)', 'click vs first', 'SPC (s)',
        'SPC vs first', 'encoder (s)', 'stages (ms/click)', 'peak memory (MB)'
    ]]
    reference = None
    for config, checkpoint in zip(args.configs, checkpoints):
        model = init_model(config, checkpoint, args.device, args.cfg_options)
        clicks, spcs, encodes, stages = [], [], [], {}
        with PeakMemory(torch.device(args.device)) as memory:
            for seed in range(args.samples):
                result = measure_interaction(model, args.clicks, seed)
                clicks += result['clicks']
                spcs.append(result['spc'])
                encodes.append(result['encode'])
                for name, seconds in result['stage_times'].items():
                    stages[name] = stages.get(name, 0.0) + seconds
        click = statistics.median(clicks)
        spc = statistics.median(spcs)
        reference = reference or (click, spc)
        stage_text = ', '.join(f'{name} {1e3 * s / len(clicks):.1f}'
                               for name, s in stages.items()) or '-'
        peak = '-' if memory.peak_mb is None else f'{memory.peak_mb:.0f}'
        rows.append([
            config, f'{1e3 * click:.1f}', f'{click / reference[0]:.2f}x',
            f'{spc:.3f}', f'{spc / reference[1]:.2f}x',
            f'{statistics.median(encodes):.2f}', stage_text, peak
        ])
        del model
    print(f'SPC, {args.samples} x {args.clicks} clicks per model, device '
          f'{args.device}, {torch.get_num_threads()} threads')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
