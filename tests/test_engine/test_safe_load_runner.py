# Copyright (c) samref contributors. All rights reserved.
import itertools
import multiprocessing
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS, RUNNERS
from torch.utils.data import DataLoader

from malicious_files import ATTACKS
from samref.engine import EmbeddingCheckHook, SafeLoadRunner
from samref.utils import load_checkpoint_file


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs)
        if mode == 'loss':
            return dict(loss=(self.linear(inputs) - 1).pow(2).mean())
        return self.linear(inputs)


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
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
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


@DATASETS.register_module(name='SafeLoadToyDataset', force=True)
class ToyDataset(torch.utils.data.Dataset):

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.tensor([float(index), 1.0]))


class PlainRecord:
    """A harmless custom class only full unpickling can rebuild."""

    def __init__(self, value: int) -> None:
        self.value = value


@pytest.fixture
def trained(tmp_path):
    """A work directory with the checkpoint of two training iterations."""
    runner = make_runner(
        tmp_path / 'run',
        max_iters=2,
        param_scheduler=dict(
            type='LinearLR', start_factor=0.5, by_epoch=False, end=4))
    runner.train()
    return tmp_path / 'run' / 'iter_2.pth', runner


def test_toolbox_checkpoint_needs_no_global_beyond_torch_defaults(trained):
    ckpt, _ = trained
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(ckpt)) == []
    content = torch.load(ckpt, weights_only=True)  # nothing registered
    assert {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'
    } <= set(content)


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_load_from_refuses_code_carrying_checkpoint(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    ckpt = ATTACKS[attack](tmp_path / 'carrier.pth', marker,
                           ToyModel().state_dict())
    runner = make_runner(tmp_path / 'victim', load_from=str(ckpt))
    with pytest.raises(pickle.UnpicklingError, match='carrier.pth'):
        runner.load_or_resume()
    assert not marker.exists()


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_resume_refuses_code_carrying_checkpoint(tmp_path, trained, attack):
    """``--resume`` with ``load_from`` naming any file reads it
    weights-only."""
    ckpt, _ = trained
    content = torch.load(ckpt, weights_only=True)
    marker = tmp_path / 'code_ran'
    carrier = ATTACKS[attack](tmp_path / 'carrier.pth', marker,
                              content['state_dict'])
    runner = make_runner(
        tmp_path / 'run', max_iters=4, resume=True, load_from=str(carrier))
    with pytest.raises(pickle.UnpicklingError, match='carrier.pth'):
        runner.load_or_resume()
    assert not marker.exists()


def test_resume_from_work_dir_is_weights_only_too(tmp_path, trained):
    """Even a checkpoint in the run's own work directory, found through
    ``last_checkpoint``, is not fully unpickled."""
    ckpt, _ = trained
    content = torch.load(ckpt, weights_only=True)
    content['meta']['record'] = PlainRecord(3)
    torch.save(content, ckpt)
    assert (tmp_path / 'run' / 'last_checkpoint').read_text().strip() == \
        str(ckpt)
    runner = make_runner(tmp_path / 'run', max_iters=4, resume=True)
    with pytest.raises(pickle.UnpicklingError, match='PlainRecord'):
        runner.load_or_resume()


def test_resume_does_not_run_config_text(tmp_path, trained):
    """mmengine's resume parses ``meta['config']`` as a Python config, which
    runs it; the runner drops it."""
    marker = tmp_path / 'code_ran'
    code = f'made = __import__("os").mkdir({str(marker)!r})\n'
    Config.fromstring(code, file_format='.py')  # the attack is live
    assert marker.exists()
    marker.rmdir()
    ckpt, _ = trained
    content = torch.load(ckpt, weights_only=True)
    content['meta']['config'] = code
    torch.save(content, ckpt)
    runner = make_runner(
        tmp_path / 'run', max_iters=4, resume=True, load_from=str(ckpt))
    runner.load_or_resume()
    assert runner.iter == 2
    assert not marker.exists()


def test_foreign_checkpoint_loads_its_weights_only_with_the_opt_in(tmp_path):
    """A checkpoint of another mmengine project (numpy values, history
    buffers) is refused, and its weights load with drop_foreign_objects."""
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('foreign_project')
    hub.update_scalar('train/loss', np.float32(0.25))
    weights = ToyModel().state_dict()
    ckpt = tmp_path / 'foreign.pth'
    torch.save(
        dict(
            state_dict=weights,
            meta=dict(seed=np.int64(3)),
            message_hub=hub.state_dict()), ckpt)
    runner = make_runner(tmp_path / 'refused', load_from=str(ckpt))
    with pytest.raises(
            pickle.UnpicklingError,
            match='foreign.pth.*numpy values.*drop-foreign'):
        runner.load_or_resume()
    runner = make_runner(
        tmp_path / 'opted', load_from=str(ckpt), drop_foreign_objects=True)
    runner.load_or_resume()
    torch.testing.assert_close(runner.model.linear.weight,
                               weights['linear.weight'])
    cfg = Config(
        dict(
            runner_type='SafeLoadRunner',
            drop_foreign_objects=True,
            model=dict(type='SafeLoadToyModel'),
            work_dir=str(tmp_path / 'cfg'),
            default_scope='mmseg',
            experiment_name='drop_foreign_objects'))
    MODELS.register_module('SafeLoadToyModel', module=ToyModel, force=True)
    assert RUNNERS.build(cfg).drop_foreign_objects


def test_checkpoint_of_another_model_is_an_error(tmp_path):
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': torch.nn.Conv2d(3, 8, 3).state_dict()}, ckpt)
    runner = make_runner(tmp_path / 'victim', load_from=str(ckpt))
    with pytest.raises(
            RuntimeError,
            match=r'other.pth does not fit.*linear \(2 tensors\)'):
        runner.load_or_resume()
    # Every tensor present but of the wrong shape.
    wrong = {
        f'linear.{k}': v
        for k, v in torch.nn.Linear(3, 2).state_dict().items()
    }
    torch.save({'state_dict': wrong}, ckpt)
    runner = make_runner(tmp_path / 'victim2', load_from=str(ckpt))
    with pytest.raises(RuntimeError, match='shape mismatch'):
        runner.load_or_resume()


def test_strict_load_fails_on_any_difference(tmp_path, trained):
    ckpt, _ = trained
    content = torch.load(ckpt, weights_only=True)
    del content['state_dict']['linear.bias']
    partial = tmp_path / 'partial.pth'
    torch.save(content, partial)
    lenient = make_runner(tmp_path / 'lenient', load_from=str(partial))
    lenient.load_or_resume()  # 2 of 3 values: loads, logs the new bias
    MODELS.register_module('SafeLoadToyModel', module=ToyModel, force=True)
    cfg = Config(
        dict(
            runner_type='SafeLoadRunner',
            strict_load=True,
            model=dict(type='SafeLoadToyModel'),
            work_dir=str(tmp_path / 'strict'),
            load_from=str(partial),
            default_scope='mmseg',
            experiment_name='strict_load'))
    strict = RUNNERS.build(cfg)
    assert strict.strict_load
    with pytest.raises(RuntimeError, match='new.*linear'):
        strict.load_or_resume()


def test_embedding_check_is_always_registered(tmp_path):
    runner = make_runner(tmp_path / 'auto')
    assert sum(isinstance(h, EmbeddingCheckHook) for h in runner.hooks) == 1
    runner = make_runner(
        tmp_path / 'own', custom_hooks=[dict(type='EmbeddingCheckHook')])
    assert sum(isinstance(h, EmbeddingCheckHook) for h in runner.hooks) == 1


def toy_config(work_dir, max_iters: int, **kwargs) -> Config:
    """A ``SafeLoadRunner`` config of the toy model, built from the
    registry as the tools build it."""
    MODELS.register_module('SafeLoadToyModel', module=ToyModel, force=True)
    return Config(
        dict(
            runner_type='SafeLoadRunner',
            model=dict(type='SafeLoadToyModel'),
            work_dir=str(work_dir),
            train_dataloader=dict(
                dataset=dict(type='SafeLoadToyDataset'),
                sampler=dict(type='InfiniteSampler', shuffle=True),
                batch_size=2,
                num_workers=0),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            default_scope='mmseg',
            **kwargs))


def test_ranks_draw_apart_but_shuffle_alike_and_repeatably(tmp_path):
    """With ``diff_rank_seed`` mmengine would seed the sampler at random
    (another data order in every run); the runner gives it the configured
    seed, and every other generator seed + rank."""
    cfg = toy_config(
        tmp_path,
        1,
        randomness=dict(seed=7, diff_rank_seed=True),
        experiment_name='diff_rank_seed')
    orders = []
    for _ in range(2):
        runner = RUNNERS.build(cfg)
        sampler = runner.train_loop.dataloader.sampler
        assert sampler.seed == 7 and runner.seed == 7  # rank 0: 7 + 0
        orders.append(list(itertools.islice(iter(sampler), 8)))
    assert orders[0] == orders[1]


def test_config_text_is_formatted_once_per_run(tmp_path, monkeypatch):
    """mmengine formats the config for the log, the message hub, the
    dumped config and every checkpoint; the runner's config formats it
    once while it does not change."""
    import mmengine.config.config as config_module
    calls = []
    format_code = config_module.FormatCode

    def counting(*args, **kwargs):
        calls.append(1)
        return format_code(*args, **kwargs)

    monkeypatch.setattr(config_module, 'FormatCode', counting)
    cfg = toy_config(
        tmp_path,
        2,
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False)),
        experiment_name='formatted_once')
    runner = RUNNERS.build(cfg)
    runner.train()
    assert len(calls) == 1
    text = load_checkpoint_file(tmp_path / 'iter_2.pth')['meta']['cfg']
    assert 'max_iters=2' in text
    runner.cfg.train_cfg.max_iters = 3  # a changed config is formatted anew
    assert 'max_iters=3' in runner.cfg.pretty_text and len(calls) == 2


def test_training_stops_its_dataloader_workers(tmp_path):
    """IterBasedTrainLoop keeps its dataloader iterator until the garbage
    collector frees the runner, whose shutdown of the workers then waits 5 s
    for each; the runner stops them when training ends. A loop that runs
    again starts its batches anew, or says why it cannot."""
    cfg = toy_config(tmp_path, 2, experiment_name='workers_stopped')
    cfg.train_dataloader.num_workers = 2
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.iter == 2 and not multiprocessing.active_children()
    runner.train_loop._max_iters = 4
    with pytest.raises(RuntimeError, match='InfiniteSampler'):
        runner.train()  # its indices are spent: an error, not a hang
    runner = make_runner(tmp_path / 'epochs', max_iters=3)
    runner.train()
    runner.train_loop._max_iters = 6  # 8 samples: 4 batches an epoch
    runner.train()
    assert runner.iter == 6


def test_env_cfg_sets_malloc_thresholds(tmp_path, monkeypatch):
    import samref.utils.host_memory as host_memory
    calls = []
    monkeypatch.setattr(host_memory, 'set_malloc_thresholds',
                        lambda **kwargs: calls.append(kwargs))
    default = Config.fromfile(
        'configs/_base_/default_runtime.py').env_cfg.malloc_cfg
    cfg = toy_config(
        tmp_path,
        1,
        env_cfg=dict(malloc_cfg=default),
        experiment_name='malloc_cfg')
    RUNNERS.build(cfg)
    assert calls == [dict(default)]
    cfg = toy_config(tmp_path, 1, experiment_name='no_malloc_cfg')
    RUNNERS.build(cfg)
    assert len(calls) == 1


@pytest.mark.parametrize('malloc_cfg', [
    dict(mmap_threshold=2**31, trim_threshold=0),
    dict(mmap_threshold=1024),
    dict(mmap_threshold=1024, trim_threshold=0, top_pad=0), 5
])
def test_bad_malloc_cfg_is_refused_naming_the_setting(tmp_path, malloc_cfg):
    cfg = toy_config(
        tmp_path,
        1,
        env_cfg=dict(malloc_cfg=malloc_cfg),
        experiment_name=f'bad_malloc_cfg_{malloc_cfg}')
    with pytest.raises(ValueError, match=r'env_cfg\.malloc_cfg'):
        RUNNERS.build(cfg)
