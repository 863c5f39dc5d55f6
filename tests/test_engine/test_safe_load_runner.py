# Copyright (c) samref contributors. All rights reserved.
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmseg.registry import RUNNERS
from torch.utils.data import DataLoader

from samref.engine import SafeLoadRunner


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs)
        if mode == 'loss':
            return dict(loss=(self.linear(inputs) - 1).pow(2).mean())
        return self.linear(inputs)


class CodeCarrier:

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


def make_runner(work_dir, max_iters=4, **kwargs):
    init_default_scope('mmseg')
    data = [torch.tensor([float(i), 1.0]) for i in range(8)]
    return SafeLoadRunner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=DataLoader(
            data, batch_size=2, collate_fn=lambda batch: dict(inputs=batch)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmseg',
        experiment_name=f'safe_load_{work_dir.name}',
        **kwargs)


def test_runner_type_in_default_runtime_builds_safe_load_runner():
    cfg = Config.fromfile('configs/_base_/default_runtime.py')
    assert RUNNERS.get(cfg.runner_type) is SafeLoadRunner


def test_load_from_reads_own_checkpoint_weights_only(tmp_path):
    runner = make_runner(tmp_path / 'train')
    trained = runner.train()
    ckpt = tmp_path / 'train' / 'iter_4.pth'
    fresh = make_runner(tmp_path / 'load', load_from=str(ckpt))
    fresh.load_or_resume()
    torch.testing.assert_close(fresh.model.linear.weight,
                               trained.linear.weight)
    assert fresh.iter == 0  # load_from restores weights, not progress


def test_resume_restores_progress_and_optimizer(tmp_path):
    first = make_runner(tmp_path / 'run', max_iters=2)
    first.train()
    momentum = first.optim_wrapper.optimizer.state_dict()['state']
    resumed = make_runner(
        tmp_path / 'run',
        max_iters=4,
        resume=True,
        load_from=str(tmp_path / 'run' / 'iter_2.pth'))
    resumed.load_or_resume()
    assert resumed.iter == 2
    restored = resumed.optim_wrapper.optimizer.state_dict()['state']
    torch.testing.assert_close(restored[0]['momentum_buffer'],
                               momentum[0]['momentum_buffer'])


def test_load_from_refuses_code_carrying_pickle(tmp_path):
    marker = tmp_path / 'code_ran'
    ckpt = tmp_path / 'carrier.pth'
    torch.save({'state_dict': {}, 'meta': CodeCarrier(str(marker))}, ckpt)
    runner = make_runner(tmp_path / 'victim', load_from=str(ckpt))
    with pytest.raises(pickle.UnpicklingError, match='carrier.pth'):
        runner.load_or_resume()
    assert not marker.exists()


class PlainRecord:
    """A harmless custom class only full unpickling can rebuild."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_only_resume_fully_unpickles(tmp_path):
    first = make_runner(tmp_path / 'own', max_iters=2)
    first.train()
    ckpt = tmp_path / 'own' / 'iter_2.pth'
    content = torch.load(ckpt, weights_only=False)
    content['meta']['record'] = PlainRecord(3)
    torch.save(content, ckpt)
    resumed = make_runner(
        tmp_path / 'own', max_iters=4, resume=True, load_from=str(ckpt))
    resumed.load_or_resume()
    assert resumed.iter == 2
    loader = make_runner(tmp_path / 'other', load_from=str(ckpt))
    with pytest.raises(pickle.UnpicklingError, match='PlainRecord'):
        loader.load_or_resume()
