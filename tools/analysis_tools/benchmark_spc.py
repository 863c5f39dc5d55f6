# Copyright (c) samref contributors. All rights reserved.
"""Seconds per click of one or more models, measured in one run.

For every model: ``--samples`` interactions of ``--clicks`` simulated
clicks on a random image with a synthetic object (the image fills the
1024 x 1024 input, or ``--image-size H W`` of it). It reports the median
latency of a click without the image encoder (what a user feels while
clicking), SPC as the paper defines it (the encoding amortised over the
clicks), where the click's time goes (per stage), the share of clicks that
ran PatchDiff, the median latency of the click at which FocSAM refines its
embedding, ratios to the first model and the peak memory. Models given
together are measured in one run on the same machine, all of them built
first and their interactions taken in turns, so their ratios are
comparable even on a shared machine::

    python tools/analysis_tools/benchmark_spc.py \\
        configs/samref/samref_vit-b_4xb4-80k_coco-lvis.py --ablate-stages

``--ablate-stages`` expands a SAM-REF config into SAM alone, GlobalDiff,
GlobalDiff + PatchDiff and the full model (Table 3's rows);
``--refiner-dtypes float32 bfloat16`` times every SAM-REF row with both
refiner precisions (``auto``: bfloat16 where the device has bfloat16
units, the row's label says which). SAM, FocSAM and SAM-REF side by side,
SAT included::

    python tools/analysis_tools/benchmark_spc.py configs/sam/sam_vit-b.py \\
        configs/focsam/focsam_vit-b.py \\
        configs/samref/samref_vit-b_4xb4-80k_coco-lvis.py --sat
"""
import argparse
import statistics
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from terminaltables import AsciiTable

from samref.apis import (PeakMemory, init_model, measure_interaction,
                         measure_sat)
from samref.models.segmentors import BaseInteractiveSegmentor
from samref.models.utils import has_fast_bfloat16

STAGES = (
    ('SAM', dict(use_global=False, use_patch=False, use_selector=False)),
    ('+GD', dict(use_global=True, use_patch=False, use_selector=False)),
    ('+GD+PD', dict(use_global=True, use_patch=True, use_selector=False)),
    ('+GD+PD+DPS', dict(use_global=True, use_patch=True, use_selector=True)),
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SPC benchmark')
    parser.add_argument('configs', nargs='+', help='model configs')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        help='one checkpoint per config (default: random weights, which '
        'time the same)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:N')
    parser.add_argument(
        '--clicks', type=int, default=20, help='clicks per interaction')
    parser.add_argument(
        '--samples', type=int, default=3, help='interactions per model')
    parser.add_argument(
        '--image-size',
        nargs=2,
        type=int,
        metavar=('H', 'W'),
        help='resized image inside the padded input (default: all of it)')
    parser.add_argument(
        '--ablate-stages',
        action='store_true',
        help='run each SAM-REF config as SAM, +GD, +GD+PD and +GD+PD+DPS')
    parser.add_argument(
        '--refiner-dtypes',
        nargs='+',
        default=['float32'],
        choices=['float32', 'bfloat16', 'auto'],
        help='time each SAM-REF model with each refiner_dtype (bfloat16 '
        'pays off on CPUs with AMX or AVX512-BF16 and on GPUs; auto picks '
        'it where the device has it, the label says which)')
    parser.add_argument(
        '--sat',
        nargs='?',
        type=int,
        const=16,
        metavar='GRID',
        help='also time SAT: GRID x GRID points (16 when not given), one '
        'at a time with the previous mask, encoding included (as '
        'benchmark_sat.py)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides for every config')
    return parser.parse_args(argv)


def expand(
        args: argparse.Namespace
) -> List[Tuple[str, str, Optional[str], dict]]:
    """``(label, config, checkpoint, options)`` of every model to time."""
    checkpoints = args.checkpoints or [None] * len(args.configs)
    if len(checkpoints) != len(args.configs):
        raise SystemExit('give one checkpoint per config')
    runs = []
    for config, checkpoint in zip(args.configs, checkpoints):
        is_samref = Config.fromfile(config).model.type == 'SAMRef'
        variants = STAGES if args.ablate_stages and is_samref \
            else (('', {}), )
        for suffix, switches in variants:
            refined = is_samref and switches.get('use_global', True)
            for dtype in args.refiner_dtypes if refined else ['float32']:
                options = dict(args.cfg_options or {})
                options.update({f'model.{k}': v for k, v in switches.items()})
                label = f'{config} {suffix}'.strip()
                if dtype != 'float32':
                    options['model.refiner_dtype'] = dtype
                    label += f' ({dtype_label(dtype, args.device)})'
                runs.append((label, config, checkpoint, options))
    return runs


def dtype_label(dtype: str, device: str) -> str:
    """``dtype``, and for ``'auto'`` what it resolves to on ``device``."""
    if dtype != 'auto':
        return dtype
    fast = has_fast_bfloat16(torch.device(device))
    return f'auto: {"bfloat16" if fast else "float32"}'


class ModelTimes:
    """What one model's interactions measured, gathered over the rounds.

    Args:
        label (str): The model's row label.
        model (BaseInteractiveSegmentor): The model, in eval mode.
    """

    def __init__(self, label: str, model: BaseInteractiveSegmentor) -> None:
        self.label = label
        self.model = model
        self.weights_mb = sum(
            t.numel() * t.element_size()
            for t in (*model.parameters(), *model.buffers())) / 2**20
        self.clicks: List[float] = []
        self.spcs: List[float] = []
        self.encodes: List[float] = []
        self.stages: Dict[str, float] = {}
        self.branches: List[str] = []
        self.refine_clicks: List[float] = []
        self.sat: Optional[float] = None
        self.peaks: List[float] = []

    def measure(self, device: torch.device, measurement: Callable[..., Any],
                *args) -> Any:
        """Run ``measurement(self.model, *args)``, noting the peak memory.

        Args:
            device (torch.device): The device whose peak memory is noted.
            measurement (callable): :func:`measure_interaction` or
                :func:`measure_sat`.
            *args: Its arguments after the model.

        Returns:
            Whatever ``measurement`` returns.
        """
        with PeakMemory(device) as memory:
            result = measurement(self.model, *args)
        self.peaks.append(memory.peak_mb)
        return result

    def add(self, result: dict) -> None:
        """Gather one :func:`measure_interaction` result."""
        self.clicks += result['clicks']
        self.spcs.append(result['spc'])
        self.encodes.append(result['encode'])
        self.branches += result['branches']
        if len(result['branches']) == len(result['clicks']):
            self.refine_clicks += [
                seconds for seconds, branch in zip(
                    result['clicks'], result['branches']) if branch == 'refine'
            ]
        for name, seconds in result['stage_times'].items():
            self.stages[name] = self.stages.get(name, 0.0) + seconds


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Run the benchmark and print its table.

    Every model is built first, then measured in rounds, one interaction of
    each model a round (and SAT, one model after another, at the end): a
    slow spell of a shared machine then falls on every row alike instead
    of on one. The peak memory of a row is the process's peak while its
    model was measured, less the other models' weights.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    args = parse_args(argv)
    device = torch.device(args.device)
    image_size = tuple(args.image_size) if args.image_size else None
    runs = [
        ModelTimes(label, init_model(config, checkpoint, args.device, options))
        for label, config, checkpoint, options in expand(args)
    ]
    for seed in range(args.samples):
        for run in runs:
            run.add(
                run.measure(device, measure_interaction, args.clicks, seed,
                            image_size))
    if args.sat is not None:
        for run in runs:
            run.sat = run.measure(device, measure_sat, args.sat)['total']
    all_weights_mb = sum(run.weights_mb for run in runs)
    rows = [[
        'model', 'click (ms, median)', 'click vs first', 'SPC (s)',
        'SPC vs first', 'encoder (s)', 'stages (ms/click)', 'PatchDiff (%)',
        'refine click (ms)', 'SAT (s)', 'peak memory (MB)'
    ]]
    reference = None
    for run in runs:
        click = statistics.median(run.clicks)
        spc = statistics.median(run.spcs)
        reference = reference or (click, spc)
        stage_text = ', '.join(f'{name} {1e3 * s / len(run.clicks):.1f}'
                               for name, s in run.stages.items()) or '-'
        patch_share = '-' if 'patch' not in run.branches and \
            'global' not in run.branches else \
            f'{100 * run.branches.count("patch") / len(run.branches):.0f}'
        refine = '-' if not run.refine_clicks else \
            f'{1e3 * statistics.median(run.refine_clicks):.1f}'
        peak = '-' if None in run.peaks else \
            f'{max(run.peaks) - (all_weights_mb - run.weights_mb):.0f}'
        rows.append([
            run.label, f'{1e3 * click:.1f}', f'{click / reference[0]:.2f}x',
            f'{spc:.3f}', f'{spc / reference[1]:.2f}x',
            f'{statistics.median(run.encodes):.2f}', stage_text, patch_share,
            refine, '-' if run.sat is None else f'{run.sat:.2f}', peak
        ])
    size = 'full input' if image_size is None else \
        f'{image_size[0]}x{image_size[1]} image'
    print(f'SPC, {args.samples} x {args.clicks} clicks per model, {size}, '
          f'device {args.device}, {torch.get_num_threads()} threads, '
          'the models in turns')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
