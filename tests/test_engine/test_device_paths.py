# Copyright (c) samref contributors. All rights reserved.
"""What fails or is slow only on a GPU, reproduced on the CPU: tensors that
refuse ``.numpy()`` as CUDA tensors do, tensors that report another device,
counts of the operations that make the host wait for the device."""
import collections
import time

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch.overrides import TorchFunctionMode

import samref.utils.timer as timer
from samref.apis import (InteractivePredictor, init_model, padded_input,
                         synthetic_object)
from samref.engine.portable_checkpoint_hook import (buffer_to_plain,
                                                    plain_to_buffer)
from testing_utils import CONFIG_DIR, build_from_config


class CudaLikeTensor(torch.Tensor):
    """Refuses ``.numpy()`` as a CUDA tensor does; ``.cpu()`` gives a plain
    tensor."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. "
                        'Use Tensor.cpu() to copy the tensor to host memory '
                        'first.')

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


class ElsewhereTensor(torch.Tensor):
    """A tensor that reports the meta device, as a ground truth left on
    the CPU reports ``cpu`` to a model on a GPU; ``.to()`` moves it for
    real."""

    @property
    def device(self):
        return torch.device('meta')

    def to(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).to(*args, **kwargs)


def test_resumed_history_buffers_come_from_gpu_tensors():
    """mmengine resumes with the checkpoint mapped to the GPU: the buffers'
    tensors are CUDA tensors there."""
    buffer = HistoryBuffer()
    for value in (0.5, 0.25, 0.125):
        buffer.update(value)
    plain = buffer_to_plain(buffer)
    for key in ('log_history', 'count_history'):
        plain[key] = plain[key].as_subclass(CudaLikeTensor)
    rebuilt = plain_to_buffer(plain)
    assert isinstance(rebuilt, HistoryBuffer)
    assert rebuilt.current() == 0.125 and rebuilt.mean() == \
        pytest.approx(0.875 / 3)


def test_training_ground_truth_follows_the_inputs_device():
    """A batch whose ground truth is not on the model's device (the train
    step benchmark's, before the fix) trains: clicks are made on the
    inputs' device."""
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_from_config('demo/sam_tiny_256_stage1.py').train()
    gt = synthetic_object(model.input_size, 0)
    gt[gt < 0] = 0
    sample = SegDataSample(metainfo=dict(click_gamma=0.6))
    sample.gt_sem_seg = PixelData(
        data=torch.from_numpy(gt.astype(np.uint8))[None].as_subclass(
            ElsewhereTensor))
    assert sample.gt_sem_seg.data.device.type == 'meta'
    losses = model(padded_input(model, 0), [sample], mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


# Tensor methods that make the host wait for a GPU (``numpy()`` needs a
# ``cpu()`` first; ``tolist()`` also counts on tensors that live on the CPU
# by design, such as SAM-REF's valid image sizes).
SYNCING = frozenset({
    '__bool__', 'item', 'tolist', 'nonzero', 'cpu', '__int__', '__float__',
    '__index__'
})


class HostWaits(TorchFunctionMode):
    """Counts the tensor operations that make the host wait for a GPU and,
    through the timer, the explicit synchronisations."""

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.counts = collections.Counter()
        real = timer.synchronize

        def synchronize(device=None):
            self.counts['synchronize'] += 1
            real(device)

        monkeypatch.setattr(timer, 'synchronize', synchronize)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', '') in SYNCING:
            self.counts[getattr(func, '__name__')] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def clicks_on(model, count):
    """Run ``count`` clicks on a random image, one per ``next``."""
    features = model.encode_image(padded_input(model, 0))
    points, labels, outputs = [], [], None
    rng = np.random.default_rng(0)
    for k in range(count):
        points.append(rng.uniform(0, model.input_size, 2).tolist())
        labels.append(int(k % 2 == 0))
        outputs = model.interact(features, torch.tensor([points]),
                                 torch.tensor([labels]), outputs)
        yield outputs


@pytest.mark.parametrize('config,first,most', [
    ('demo/samref_tiny_256_stage2.py', 1, 5),
    ('focsam/focsam_vit-tiny_256_shapes.py', 2, 1),
])
@torch.no_grad()
def test_a_click_waits_for_the_device_only_where_it_must(
        monkeypatch, config, first, most):
    """Without stage timing a click makes at most ``most`` host waits:
    FocSAM's refine decision; SAM-REF's union of the valid sizes (on the
    CPU), the masks and last clicks for the window selection (on the host)
    in two transfers, the boxes for the crops in one. Before, every stage
    synchronised twice and each sample, window and crop read the device
    again (20 to 30 per click)."""
    torch.manual_seed(0)
    model = build_from_config(config).eval()
    if hasattr(model, 'use_selector'):
        model.use_selector = False  # PatchDiff at every click: the most
    waits = HostWaits(monkeypatch)
    clicks = clicks_on(model, first + 3)
    for _ in range(first):  # FocSAM refines at its second click
        next(clicks)
    per_click = []
    for _ in range(3):
        before = waits.total
        with waits:
            outputs = next(clicks)
        per_click.append(waits.total - before)
        assert not outputs.stage_times
    assert max(per_click) <= most, dict(waits.counts)
    assert waits.counts['synchronize'] == 0
    if hasattr(model, 'use_selector'):
        assert outputs.branch == ['patch']
    # Timing asked for: the stages are synchronised and timed.
    with model.timing_stages(), waits:
        outputs = next(clicks_on(model, 1))
    assert outputs.stage_times and waits.counts['synchronize'] >= 2


def test_predictor_encode_time_waits_for_the_encoder(monkeypatch):
    """The encode time is read after a synchronisation, so it is not too
    small on a GPU and the first click does not absorb it."""
    events = []
    real = timer.synchronize

    def synchronize(device=None):
        events.append('synchronize')
        real(device)

    monkeypatch.setattr(timer, 'synchronize', synchronize)
    torch.manual_seed(0)
    model = init_model(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
    encode = model.encode_image

    def slow_encode(*args, **kwargs):
        features = encode(*args, **kwargs)
        events.append('encoded')
        time.sleep(0.05)
        return features

    model.encode_image = slow_encode
    predictor = InteractivePredictor(model)
    predictor.set_image(np.zeros((8, 12, 3), np.uint8))
    assert events[-2:] == ['encoded', 'synchronize']
    assert predictor.encode_time >= 0.05
