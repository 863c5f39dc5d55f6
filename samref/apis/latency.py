# Copyright (c) samref contributors. All rights reserved.
"""Latency measurements shared by the benchmark scripts."""
import statistics
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmseg.structures import SegDataSample

from ..datasets.synthetic import draw_ring_with_bar
from ..evaluation.click_simulator import ClickSimulator
from ..models.segmentors import BaseInteractiveSegmentor, Interaction
from ..utils.timer import synchronize, timed
from .session import InteractiveSession


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def padded_input(model: BaseInteractiveSegmentor,
                 seed: int = 0,
                 image_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """A random image, normalised and padded to ``1 x 3 x S x S``.

    Args:
        model (BaseInteractiveSegmentor): The model.
        seed (int): Seed of the pixels. Defaults to 0.
        image_size (tuple[int, int], optional): ``(h, w)`` of the resized
            image before padding; ``(S, S)`` when None.

    Returns:
        torch.Tensor: The input on the model's device.
    """
    height, width = image_size or (model.input_size, model.input_size)
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(
        0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
    data = model.data_preprocessor(
        dict(inputs=[pixels], data_samples=[SegDataSample()]), False)
    return data['inputs'].to(model_device(model))


@torch.no_grad()
def measure_sat(model: BaseInteractiveSegmentor,
                grid: int = 16,
                seed: int = 0) -> Dict[str, float]:
    """SAT latency: one image, a ``grid x grid`` grid of points, one point
    at a time with the previous mask, the image encoded once.

    Args:
        model (BaseInteractiveSegmentor): The model, in eval mode.
        grid (int): Points per side. Defaults to 16.
        seed (int): Seed of the random image. Defaults to 0.

    Returns:
        dict[str, float]: ``total`` seconds (encoding included),
        ``encode`` seconds and ``per_point`` seconds (median).
    """
    device = model_device(model)
    inputs = padded_input(model, seed)
    times: Dict[str, float] = {}
    per_point: List[float] = []
    step = model.input_size / grid
    with timed(times, 'total', device):
        with timed(times, 'encode', device):
            features = model.encode_image(inputs)
        outputs: Optional[Interaction] = None
        for row in range(grid):
            for col in range(grid):
                point = torch.tensor([[[(col + 0.5) * step,
                                        (row + 0.5) * step]]],
                                     device=device)
                label = torch.ones(1, 1, dtype=torch.int64, device=device)
                start = time.perf_counter()
                outputs = model.interact(features, point, label, outputs)
                synchronize(device)
                per_point.append(time.perf_counter() - start)
    return dict(
        total=times['total'],
        encode=times['encode'],
        per_point=statistics.median(per_point))


def synthetic_object(
        size: int,
        seed: int = 0,
        image_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """An ``S x S`` 1/0 object map of the padded input: the ring with a
    thin bar of :func:`~samref.datasets.draw_ring_with_bar` inside the image
    (the padding is ignored, -1).

    Args:
        size (int): Side of the map.
        seed (int): Seed of the shape's position. Defaults to 0.
        image_size (tuple[int, int], optional): ``(h, w)`` of the image in
            the map; the whole map when None.

    Returns:
        np.ndarray: int8 map.
    """
    height, width = image_size or (size, size)
    out = draw_ring_with_bar((size, size), seed,
                             (height, width)).astype(np.int8)
    out[height:] = -1
    out[:, width:] = -1
    return out


@torch.no_grad()
def measure_interaction(
        model: BaseInteractiveSegmentor,
        num_clicks: int = 20,
        seed: int = 0,
        image_size: Optional[Tuple[int, int]] = None) -> Dict[str, object]:
    """Time one object's interaction with simulated clicks.

    The image is random and the object synthetic (or ``gt``); clicks come
    from :class:`ClickSimulator` on the model's own predictions, so models
    with data-dependent branches take their usual paths.

    Args:
        model (BaseInteractiveSegmentor): The model, in eval mode.
        num_clicks (int): Clicks to make. Defaults to 20.
        seed (int): Seed of image and object. Defaults to 0.
        image_size (tuple[int, int], optional): ``(h, w)`` of the resized
            image inside the padded input; ``(S, S)`` when None.

    Returns:
        dict: ``encode`` seconds, ``clicks`` (seconds per click of
        ``interact``), ``stage_times`` (summed seconds per stage the model
        reports, its stages timed with :meth:`timing_stages`), ``branches``
        (per click, when the model reports them) and ``spc`` (encoding
        amortised over the clicks, the paper's SPC).
    """
    device = model_device(model)
    size = model.input_size
    inputs = padded_input(model, seed, image_size)
    gt = synthetic_object(size, seed, image_size)
    times: Dict[str, float] = {}
    with timed(times, 'encode', device):
        features = model.encode_image(inputs)
    # The object map covers the padded input: no resize, no crop.
    session = InteractiveSession(
        model,
        features,
        dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1.0, 1.0)),
        time_stages=True)
    simulator = ClickSimulator(gt)
    pred = np.zeros(gt.shape, dtype=bool)
    clicks: List[float] = []
    branches: List[str] = []
    stage_times: Dict[str, float] = {}
    for _ in range(num_clicks):
        click = simulator.next_click(pred)
        result = session.add_click(click.x, click.y, click.is_positive)
        clicks.append(result.interact_time)
        for name, seconds in result.interaction.stage_times.items():
            stage_times[name] = stage_times.get(name, 0.0) + seconds
        branches += result.interaction.branch or []
        pred = result.mask
    return dict(
        encode=times['encode'],
        clicks=clicks,
        stage_times=stage_times,
        branches=branches,
        spc=(times['encode'] + sum(clicks)) / max(len(clicks), 1))


class PeakMemory:
    """Peak memory of a block: CUDA allocations on a GPU, the process's
    resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) on a
    Linux CPU.

    Args:
        device (torch.device): The device the model runs on.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb: Optional[float] = None

    @staticmethod
    def _rss_peak_mb() -> Optional[float]:
        try:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith('VmHWM:'):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')
            except OSError:
                pass
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = self._rss_peak_mb()
