# Copyright (c) samref contributors. All rights reserved.
import json
import os
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

from samref.datasets import make_shapes_dataset
from samref.engine import FirstObjects, InteractiveValLoop
from testing_utils import CONFIG_DIR, NO_VALIDATION

STAGE1 = CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'


class ListedObjects:
    """A dataset stand-in: images with the given numbers of objects."""

    metainfo = dict(dataset_name='listed')

    def __init__(self, counts):
        self.counts = counts

    def __len__(self):
        return len(self.counts)

    def get_data_info(self, index):
        return dict(img_path=f'{index}.png', objects=[{}] * self.counts[index])

    def __getitem__(self, index):
        return index


def test_first_objects_stops_inside_the_image_that_fills_the_budget():
    subset = FirstObjects(ListedObjects([2, 0, 3, 4]), max_objects=4)
    # Image 1 has no object; image 2 gives 2 of its 3; image 3 is left out.
    assert [subset[i] for i in range(len(subset))] == [0, 2]
    assert subset.object_limits == {'2.png': 2}
    assert subset.num_objects == 4
    assert FirstObjects(ListedObjects([2, 3]), 10).num_objects == 5
    with pytest.raises(ValueError, match='max_objects'):
        FirstObjects(ListedObjects([2]), 0)


def test_val_metrics_per_benchmark_and_their_mean():
    metrics = {
        'interactive/A/NoC85': 2.0,
        'interactive/A/NoC90': 3.0,
        'interactive/A/mIoU@5': 0.8,
        'interactive/A/NoF90': 1,
        'interactive/B/NoC85': 4.0,
        'interactive/B/NoC90': 5.0,
        'interactive/B/mIoU@5': 0.6,
        'interactive/B/part/NoC90': 9.0
    }
    result = InteractiveValLoop.val_metrics(metrics)
    assert result['NoC90'] == 4.0 and result['A/NoC90'] == 3.0
    assert result['5-mIoU'] == pytest.approx(70.0)
    assert set(result) == {
        'NoC85', 'NoC90', '5-mIoU', 'A/NoC85', 'A/NoC90', 'A/5-mIoU',
        'B/NoC85', 'B/NoC90', 'B/5-mIoU'
    }
    single = {k: v for k, v in metrics.items() if '/A/' in k}
    assert InteractiveValLoop.val_metrics(single) == {
        'NoC85': 2.0,
        'NoC90': 3.0,
        '5-mIoU': pytest.approx(80.0)
    }
    assert InteractiveValLoop.val_metrics(
        {
            'interactive/A/NoC85': 2.0,
            'interactive/A/NoC90': 3.0,
            'interactive/A/mIoU@3': 0.5
        },
        num_clicks=3)['3-mIoU'] == 50.0
    with pytest.raises(RuntimeError, match='NoCMetric'):
        InteractiveValLoop.val_metrics({'mIoU': 0.5})
    with pytest.raises(RuntimeError, match='NoCMetric'):
        InteractiveValLoop.val_metrics(single, num_clicks=3)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return str(
        make_shapes_dataset(str(tmp_path_factory.mktemp('shapes')), 6, seed=5))


def train(shapes, work_dir, validate):
    cfg = Config.fromfile(str(STAGE1))
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root':
        shapes,
        'train_dataloader.batch_size':
        2,
        'train_dataloader.num_workers':
        0,
        'train_cfg.max_iters':
        4,
        'param_scheduler.0.end':
        1,
        'param_scheduler.1.begin':
        1,
        'param_scheduler.1.end':
        4,
        'default_hooks.logger.interval':
        1,
        'default_hooks.checkpoint.interval':
        100,
        'work_dir':
        str(work_dir),
        'load_from':
        None,
        'experiment_name':
        os.path.basename(work_dir),
        # A visualizer of its own (mmengine reuses one of the same name).
        'visualizer.name':
        f'visualizer_{os.path.basename(work_dir)}',
    })
    if validate:
        cfg.val_dataloader = cfg.test_dataloader
        cfg.val_dataloader.dataset.data_root = shapes
        cfg.val_evaluator = dict(type='NoCMetric')
        cfg.val_cfg = dict(
            type='InteractiveValLoop', num_clicks=5, max_objects=3)
        cfg.train_cfg.val_interval = 2
        cfg.default_hooks.checkpoint.update(save_best='NoC90', rule='less')
    else:
        cfg.merge_from_dict(NO_VALIDATION)
    runner = RUNNERS.build(cfg)
    runner.train()
    return runner


def losses(work_dir):
    log = next(work_dir.rglob('*.log')).read_text()
    return re.findall(r'Iter\(train\).*  loss: (\S+)', log)


def test_validation_while_training(shapes, tmp_path):
    runner = train(shapes, tmp_path / 'val', validate=True)
    assert len(runner.val_dataloader.dataset) <= 3
    # The validation lines of the log, at iterations 2 and 4.
    log = next((tmp_path / 'val').rglob('*.log')).read_text()
    lines = [
        line for line in log.splitlines()
        if 'Iter(val) [3/3]' in line and 'NoC90: ' in line
    ]
    assert len(lines) == 2, log[-3000:]
    assert all('NoC85: ' in line and '5-mIoU: ' in line for line in lines)
    # The visualizer backend got them, at the training step.
    records = [
        json.loads(line) for line in next((
            tmp_path / 'val').rglob('scalars.json')).read_text().splitlines()
    ]
    validations = [r for r in records if 'NoC90' in r]
    assert [r['step'] for r in validations] == [2, 4]
    assert all(1 <= r['NoC90'] <= 5 for r in validations)
    assert all(0 <= r['5-mIoU'] <= 100 for r in validations)
    # The best checkpoint by NoC90 is kept.
    best = list((tmp_path / 'val').glob('best_NoC90_iter_*.pth'))
    assert len(best) == 1
    # Validating leaves the global random generators as they were (the
    # dataloader draws its seed from torch's), so the training that follows
    # is the same as without validation.
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    runner.val_loop.run()
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    train(shapes, tmp_path / 'plain', validate=False)
    assert len(losses(tmp_path / 'val')) == 4
    assert losses(tmp_path / 'val') == losses(tmp_path / 'plain')


def test_stage_configs_validate_on_coco_mval():
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from testing_utils import SHARED_DATA
    root = SHARED_DATA / 'COCO_MVal'
    if not root.is_dir():
        pytest.skip(f'{root} is absent')
    cfg = Config.fromfile(
        str(CONFIG_DIR / 'samref' / 'samref_vit-h_4xb4-80k_coco-lvis.py'))
    assert cfg.train_cfg.val_interval == cfg.default_hooks.checkpoint.interval
    assert cfg.default_hooks.checkpoint.save_best == 'NoC90'
    init_default_scope('mmseg')
    cfg.val_dataloader.dataset.data_root = str(root)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    subset = FirstObjects(dataset, cfg.val_cfg.max_objects)
    assert subset.num_objects == 100 and len(subset) <= 100
    sample = subset[0]['data_samples']
    assert sample.gt_object_masks.shape[0] >= 1
