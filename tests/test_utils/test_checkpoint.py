# Copyright (c) samref contributors. All rights reserved.
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint

from samref.utils import load_checkpoint_file, trusted_checkpoints


class CodeCarrier:
    """Unpickling this object runs ``os.mkdir(path)``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


class PlainRecord:
    """A harmless custom class: only full unpickling can rebuild it."""

    def __init__(self, value: int) -> None:
        self.value = value


@pytest.fixture
def code_checkpoint(tmp_path):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'carrier.pth'
    torch.save({
        'state_dict': {
            'weight': torch.ones(2)
        },
        'meta': CodeCarrier(str(marker))
    }, path)
    return path, marker


def test_code_carrying_pickle_is_refused(code_checkpoint):
    path, marker = code_checkpoint
    with pytest.raises(pickle.UnpicklingError) as error:
        load_checkpoint_file(str(path))
    assert str(path) in str(error.value)
    assert 'mkdir' in str(error.value)
    assert not marker.exists()


def test_code_carrying_pickle_is_refused_through_mmengine(code_checkpoint):
    path, marker = code_checkpoint
    model = torch.nn.Linear(1, 2, bias=False)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(model, str(path))
    assert not marker.exists()


def test_trusted_block_fully_unpickles(tmp_path):
    path = tmp_path / 'record.pth'
    torch.save({'record': PlainRecord(7)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(str(path))
    with trusted_checkpoints():
        assert load_checkpoint_file(str(path))['record'].value == 7
    # The trust ends with the block.
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(str(path))


def test_mmengine_style_checkpoint_loads_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_checkpoint_policy')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('iter', 3)
    path = tmp_path / 'iter_3.pth'
    torch.save(
        dict(
            meta=dict(iter=3, seed=np.int64(1), shape=np.zeros((2, 2))),
            state_dict={'weight': torch.arange(4.)},
            message_hub=hub.state_dict()), path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['meta']['seed'] == 1
    assert loaded['message_hub']['runtime_info']['iter'] == 3
    torch.testing.assert_close(loaded['state_dict']['weight'],
                               torch.arange(4.))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_checkpoint_file(str(tmp_path / 'nowhere.pth'))
