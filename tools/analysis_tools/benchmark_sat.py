# Copyright (c) samref contributors. All rights reserved.
"""SAT latency (SegNext's Segment Anything Task) of one or more models.

One 1024 x 1024 image, a 16 x 16 grid of points, each point given alone
together with the previous mask; the total time for all 256 points, the
image encoding included once. Models given together are measured in one
run, so their ratios are comparable on a shared machine::

    python tools/analysis_tools/benchmark_sat.py \\
        configs/sam/sam_vit-b.py configs/sam/sam_vit-tiny.py --device cpu
"""
import argparse
from typing import List, Optional

import torch
from mmengine.config import DictAction
from terminaltables import AsciiTable

from samref.apis import PeakMemory, init_model, measure_sat


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SAT latency benchmark')
    parser.add_argument('configs', nargs='+', help='model configs')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        help='one checkpoint per config (default: random weights, which '
        'time the same)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:N')
    parser.add_argument('--grid', type=int, default=16, help='points/side')
    parser.add_argument(
        '--repeats', type=int, default=1, help='runs per model (median)')
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
        'model', 'total (s)', 'encoder (s)', 'per point (ms)', 'vs first',
        'peak memory (MB)'
    ]]
    first = None
    for config, checkpoint in zip(args.configs, checkpoints):
        model = init_model(config, checkpoint, args.device, args.cfg_options)
        runs = []
        with PeakMemory(torch.device(args.device)) as memory:
            for _ in range(args.repeats):
                runs.append(measure_sat(model, args.grid))
        result = sorted(runs, key=lambda r: r['total'])[len(runs) // 2]
        first = first or result['total']
        peak = '-' if memory.peak_mb is None else f'{memory.peak_mb:.0f}'
        rows.append([
            config, f'{result["total"]:.2f}', f'{result["encode"]:.2f}',
            f'{1e3 * result["per_point"]:.1f}',
            f'{result["total"] / first:.2f}x', peak
        ])
        del model
    print(f'SAT latency, {args.grid}x{args.grid} points, device '
          f'{args.device}, {torch.get_num_threads()} threads')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
