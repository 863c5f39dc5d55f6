# Copyright (c) samref contributors. All rights reserved.
import contextlib
import random
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Union

import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import LOOPS
from mmseg.registry import DATASETS
from torch.utils.data import DataLoader, Dataset

from .interactive_test_loop import InteractiveTestLoop

# What validation reports of each benchmark, from NoCMetric's summary:
# reported name -> (summary key, scale). With fewer than 5 clicks per object
# the mIoU is that of the last click (``<k>-mIoU``).
VAL_METRICS = OrderedDict([('NoC85', ('NoC85', 1.0)),
                           ('NoC90', ('NoC90', 1.0)),
                           ('5-mIoU', ('mIoU@5', 100.0))])


def val_metric_keys(num_clicks: int) -> 'OrderedDict[str, tuple]':
    """:data:`VAL_METRICS` for a click budget."""
    keys = OrderedDict(VAL_METRICS)
    if num_clicks < 5:
        del keys['5-mIoU']
        keys[f'{num_clicks}-mIoU'] = (f'mIoU@{num_clicks}', 100.0)
    return keys


class FirstObjects(Dataset):
    """The first images of a dataset, as many as hold ``max_objects``
    objects.

    Args:
        dataset (Dataset): An interactive dataset whose data infos list
            their ``objects`` (:class:`InteractiveSegDataset` and its
            subclasses, or a ``ConcatDataset`` of them).
        max_objects (int): Objects to keep.

    Attributes:
        object_limits (dict[str, int]): For the last image, when the budget
            ends inside it, its ``img_path`` and how many of its objects
            belong to the subset.
    """

    def __init__(self, dataset: Dataset, max_objects: int) -> None:
        if max_objects < 1:
            raise ValueError(f'max_objects must be >= 1, got {max_objects}')
        self.dataset = dataset
        self.indices: List[int] = []
        self.object_limits: Dict[str, int] = {}
        left = max_objects
        for index in range(len(dataset)):
            if left == 0:
                break
            info = dataset.get_data_info(index)
            objects = len(info.get('objects', ()))
            if objects == 0:
                continue
            self.indices.append(index)
            if objects > left:
                self.object_limits[info['img_path']] = left
            left -= min(objects, left)
        if not self.indices:
            raise ValueError(f'{type(dataset).__name__} has no object to '
                             'validate on')
        self.num_objects = max_objects - left

    @property
    def metainfo(self) -> dict:
        """The metainfo of the whole dataset."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[self.indices[index]]


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Restore Python's, numpy's and torch's global generators on exit, so
    that validating does not change the training that follows (its clicks
    and augmentations are drawn from them)."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@LOOPS.register_module()
class InteractiveValLoop(InteractiveTestLoop):
    """Interactive validation while training, on a small subset.

    The click protocol of :class:`InteractiveTestLoop` (the same clicks,
    metrics and distributed gathering) on the first ``max_objects``
    objects of the validation set, run every ``train_cfg.val_interval``
    iterations. It reports, per benchmark, ``NoC85``, ``NoC90`` and
    ``5-mIoU`` (%) to the runner's log and visualizer backends (named
    ``<dataset>/<metric>`` and averaged over the benchmarks when there are
    several), so ``CheckpointHook(save_best='NoC90', rule='less')`` keeps
    the best checkpoint. The global random generators are restored
    afterwards: a run trains the same with or without validation.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation dataloader (batch
            size 1: one image with all its objects).
        evaluator (Evaluator | dict | list): Usually ``NoCMetric``.
        num_clicks (int): Clicks per object. Defaults to 20.
        max_objects (int, optional): Objects validated on, from the start of
            the dataset; all of them when None. Defaults to 100.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 num_clicks: int = 20,
                 max_objects: Optional[int] = 100) -> None:
        self.object_limits: Dict[str, int] = {}
        if max_objects is not None:
            if not isinstance(dataloader, dict):
                raise TypeError('InteractiveValLoop with max_objects needs '
                                'the dataloader as a config dict')
            dataloader = dict(dataloader)
            dataset = dataloader['dataset']
            if isinstance(dataset, dict):
                dataset = DATASETS.build(dataset)
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
            subset = FirstObjects(dataset, max_objects)
            self.object_limits = subset.object_limits
            dataloader['dataset'] = subset
        super().__init__(runner, dataloader, evaluator, num_clicks)

    def run(self) -> dict:
        """Validate on the subset.

        Returns:
            dict: ``NoC85``, ``NoC90`` and ``5-mIoU`` (see the class
            docstring).
        """
        with preserved_random_state():
            self.runner.call_hook('before_val')
            self.runner.call_hook('before_val_epoch')
            model = self.model
            model.eval()
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
            metrics = self.val_metrics(
                self.evaluator.evaluate(len(self.dataloader.dataset)),
                self.num_clicks)
            self.runner.call_hook('after_val_epoch', metrics=metrics)
            self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """Validate on the objects of one image.

        Args:
            idx (int): Index of the batch.
            data_batch (dict): One image from the dataloader.
        """
        self.runner.call_hook(
            'before_val_iter', batch_idx=idx, data_batch=data_batch)
        for sample in data_batch['data_samples']:
            limit = self.object_limits.get(sample.metainfo['img_path'])
            if limit is not None:
                sample.gt_object_masks = sample.gt_object_masks[:limit]
        outputs = [self.evaluate_image(data_batch)]
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_val_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)

    @staticmethod
    def val_metrics(metrics: Dict[str, float],
                    num_clicks: int = 20) -> Dict[str, float]:
        """Pick :data:`VAL_METRICS` of every benchmark from the evaluator's
        ``<prefix>/<group>/<key>`` metrics (parts of a benchmark, named
        ``<dataset>/<part>``, are left out).

        Args:
            metrics (dict[str, float]): The evaluator's metrics.
            num_clicks (int): Clicks per object. Defaults to 20.

        Returns:
            dict[str, float]: ``NoC85``, ``NoC90``, ``5-mIoU`` (the mean
            over the benchmarks; ``<k>-mIoU`` for ``k = num_clicks < 5``)
            and, with several benchmarks, ``<dataset>/<metric>`` for each.
        """
        wanted = val_metric_keys(num_clicks)
        per_dataset: Dict[str, Dict[str, float]] = OrderedDict()
        for name, (key, scale) in wanted.items():
            for full_key, value in metrics.items():
                parts = full_key.split('/')
                if len(parts) == 3 and parts[2] == key:
                    per_dataset.setdefault(parts[1], {})[name] = \
                        scale * value
        if not per_dataset or any(
                len(values) != len(wanted) for values in per_dataset.values()):
            raise RuntimeError(
                f'the evaluator did not report {list(wanted)} for every '
                f'benchmark (got {sorted(metrics)}): InteractiveValLoop '
                'needs NoCMetric as val_evaluator')
        result: Dict[str, float] = OrderedDict()
        for name in wanted:
            values = [m[name] for m in per_dataset.values()]
            result[name] = float(np.mean(values))
        if len(per_dataset) > 1:
            for dataset, values in per_dataset.items():
                for name, value in values.items():
                    result[f'{dataset}/{name}'] = value
        return result
