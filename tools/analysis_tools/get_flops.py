# Copyright (c) samref contributors. All rights reserved.
"""GFLOPs of an interactive model, per stage, for the image and per click.

mmseg's ``get_flops.py`` times a ``decode_head`` on one forward pass; an
interactive model encodes the image once and then runs its prompt path at
every click, with data-dependent stages (SAM-REF's PatchDiff runs when its
selector asks). This script runs a simulated interaction (random image,
synthetic object, clicks from :class:`ClickSimulator` on the model's own
predictions, as ``benchmark_spc.py``) under PyTorch's FLOP counter and
splits the count by the model's top-level modules::

    python tools/analysis_tools/get_flops.py configs/sam/sam_vit-b.py \\
        configs/samref/samref_vit-b_4xb4-80k_coco-lvis.py --clicks 20

A multiply-add counts as two FLOPs; operations the counter does not model
(element-wise ones, RoIAlign, interpolation) count as none. Work outside
any module (e.g. the segmentor's own resizing) is under ``other``.
"""
import argparse
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import DictAction
from terminaltables import AsciiTable
from torch.nn.modules.module import (register_module_forward_hook,
                                     register_module_forward_pre_hook)
from torch.utils.flop_counter import FlopCounterMode

from samref.apis import InteractiveSession, init_model
from samref.apis.latency import padded_input, synthetic_object
from samref.evaluation import ClickSimulator


class StageFlops:
    """Count FLOPs and attribute them to the model's top-level modules.

    Inside the context every FLOP is counted; those of an outermost call of
    a module of the model go to the top-level module holding it (e.g.
    ``image_encoder``, ``global_refiner``), the rest to ``other``.

    Args:
        model (torch.nn.Module): The model.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.stage_of = {
            id(module): name.split('.')[0]
            for name, module in model.named_modules() if name
        }
        self.flops: Dict[str, int] = defaultdict(int)
        self._depth = 0
        self._start = 0
        self._stage = ''

    def __enter__(self) -> 'StageFlops':
        self.counter = FlopCounterMode(display=False)
        self.counter.__enter__()
        self._handles = [
            register_module_forward_pre_hook(self._enter_module),
            register_module_forward_hook(self._leave_module)
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self.counter.__exit__(*exc)
        attributed = sum(self.flops.values())
        self.flops['other'] += self.counter.get_total_flops() - attributed

    def _enter_module(self, module: torch.nn.Module, args) -> None:
        if id(module) not in self.stage_of:
            return
        if self._depth == 0:
            self._start = self.counter.get_total_flops()
            self._stage = self.stage_of[id(module)]
        self._depth += 1

    def _leave_module(self, module: torch.nn.Module, args, output) -> None:
        if id(module) not in self.stage_of:
            return
        self._depth -= 1
        if self._depth == 0:
            self.flops[self._stage] += \
                self.counter.get_total_flops() - self._start


@torch.no_grad()
def count_interaction(model, num_clicks: int, seed: int = 0) -> dict:
    """FLOPs of encoding one image and of each of ``num_clicks`` clicks.

    Args:
        model (BaseInteractiveSegmentor): The model, in eval mode.
        num_clicks (int): Clicks to simulate.
        seed (int): Seed of the image and the object. Defaults to 0.

    Returns:
        dict: ``encode`` (FLOPs per stage) and ``clicks`` (per click, FLOPs
        per stage), ``branches`` (per click, when the model reports them).
    """
    size = model.input_size
    inputs = padded_input(model, seed)
    with StageFlops(model) as encode:
        features = model.encode_image(inputs)
    session = InteractiveSession(
        model, features,
        dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1.0, 1.0)))
    simulator = ClickSimulator(synthetic_object(size, seed))
    pred = np.zeros((size, size), dtype=bool)
    clicks, branches = [], []
    for _ in range(num_clicks):
        click = simulator.next_click(pred)
        with StageFlops(model) as counted:
            result = session.add_click(click.x, click.y, click.is_positive)
        clicks.append(dict(counted.flops))
        branches += result.interaction.branch or []
        pred = result.mask
    return dict(encode=dict(encode.flops), clicks=clicks, branches=branches)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='GFLOPs per stage of interactive models, for the image '
        'and per click')
    parser.add_argument('configs', nargs='+', help='model configs')
    parser.add_argument(
        '--clicks',
        type=int,
        default=20,
        help='clicks of the simulated interaction (the per-click figures '
        'are their mean)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda:N')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides for every config')
    return parser.parse_args(argv)


def gflops(stages: Dict[str, float]) -> str:
    """``stage value`` pairs in GFLOPs, largest first."""
    parts = [(name, value) for name, value in stages.items() if value > 0]
    parts.sort(key=lambda item: -item[1])
    return ', '.join(f'{name} {value / 1e9:.2f}' for name, value in parts)


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Count and print the table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    args = parse_args(argv)
    if args.clicks < 1:
        raise SystemExit(f'--clicks must be >= 1, got {args.clicks}')
    rows = [[
        'model', 'image (GFLOPs)', 'image stages (GFLOPs)',
        'click (GFLOPs, mean)', 'click stages (GFLOPs, mean)',
        'PatchDiff clicks (%)'
    ]]
    for config in args.configs:
        model = init_model(config, None, args.device, args.cfg_options)
        # Views of weights that require grad keep requiring it even without
        # autograd, which the counter's module tracking refuses.
        model.requires_grad_(False)
        result = count_interaction(model, args.clicks)
        per_click: Dict[str, float] = defaultdict(float)
        for click in result['clicks']:
            for name, value in click.items():
                per_click[name] += value / len(result['clicks'])
        branches = result['branches']
        patch = '-' if not branches else \
            f'{100 * branches.count("patch") / len(branches):.0f}'
        rows.append([
            config, f'{sum(result["encode"].values()) / 1e9:.2f}',
            gflops(result['encode']), f'{sum(per_click.values()) / 1e9:.2f}',
            gflops(per_click), patch
        ])
        del model
    print(f'GFLOPs (a multiply-add is 2 FLOPs), {args.clicks} simulated '
          'clicks per model, the full input')
    print(AsciiTable(rows).table)
    return rows


if __name__ == '__main__':
    main()
