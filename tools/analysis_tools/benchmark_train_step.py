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
"""
import argparse
import statistics
import time
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from terminaltables import AsciiTable

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


def time_steps(model, optim_wrapper, batch: dict,
               steps: int) -> Tuple[float, Optional[float]]:
    """Median seconds of a training step and the steps' peak memory (MB).
    """
    times = []
    device = batch['inputs'].device
    with PeakMemory(device) as memory:
        for step in range(steps + 1):  # the first step warms up
            np.random.seed(step)
            start = time.perf_counter()
            with optim_wrapper.optim_context(model):
                losses = model(**batch, mode='loss')
            loss = sum(v for k, v in losses.items() if k.startswith('loss'))
            optim_wrapper.update_params(loss)
            synchronize(device)
            if step:
                times.append(time.perf_counter() - start)
    return statistics.median(times), memory.peak_mb


def main(argv: Optional[List[str]] = None) -> List[list]:
    """Run the benchmark and print its table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        list[list]: The table's rows.
    """
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    model.train()
    wrapper_cfg = model.cfg.optim_wrapper
    if args.amp:
        wrapper_cfg = dict(
            wrapper_cfg,
            type='AmpOptimWrapper',
            dtype=args.amp,
            loss_scale='dynamic')
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    batch = make_batch(model, args.batch_size)
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
