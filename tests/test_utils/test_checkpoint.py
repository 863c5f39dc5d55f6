# Copyright (c) samref contributors. All rights reserved.
import builtins
import functools
import http.server
import os
import pickle
import threading

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner.checkpoint import load_from_local

from malicious_files import ATTACKS, TENSOR_ATTACKS
from samref.utils import (load_checkpoint_file, load_tensor_file,
                          resolve_checkpoint, safe_checkpoint_globals)
from samref.utils.checkpoint import register_safe_globals


class PlainRecord:
    """A harmless custom class: only full unpickling can rebuild it."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_getattr_payload_is_live_when_getattr_is_allowed(tmp_path):
    """The attack file really runs code wherever ``getattr`` is allowed, as
    it was by the toolbox's earlier allowlist."""
    marker = tmp_path / 'code_ran'
    path = ATTACKS['getattr'](tmp_path / 'a.pth', marker,
                              {'weight': torch.ones(2)})
    torch.serialization.clear_safe_globals()  # drop samref's allowlist
    try:
        with torch.serialization.safe_globals([builtins.getattr]):
            loaded = torch.load(path, weights_only=True)
    finally:
        register_safe_globals()
    assert marker.exists()
    torch.testing.assert_close(loaded['state_dict']['weight'], torch.ones(2))


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_code_carrying_checkpoint_is_refused(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    path = ATTACKS[attack](tmp_path / 'carrier.pth', marker,
                           {'weight': torch.ones(2)})
    with pytest.raises(pickle.UnpicklingError) as error:
        load_checkpoint_file(str(path))
    assert str(path) in str(error.value)
    assert ('getattr' if attack == 'getattr' else 'mkdir') in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_code_carrying_checkpoint_is_refused_through_mmengine(
        tmp_path, attack):
    """mmengine's own loader (torch.load's default weights-only load, with
    the globals samref registers) refuses it too."""
    marker = tmp_path / 'code_ran'
    path = ATTACKS[attack](tmp_path / 'carrier.pth', marker,
                           {'weight': torch.ones(2, 1)})
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(1, 2, bias=False), str(path))
    assert not marker.exists()


def test_allowlist_holds_no_code_reaching_builtin():
    allowed = [
        item[0] if isinstance(item, tuple) else item
        for item in safe_checkpoint_globals()
    ]
    for dangerous in (getattr, eval, exec, __import__, compile, open,
                      setattr, globals, vars, os.system):
        assert not any(item is dangerous for item in allowed)
    assert all(isinstance(item, type) or callable(item) for item in allowed)
    assert not any(type(item).__name__ == 'module' for item in allowed)


def test_custom_classes_are_refused(tmp_path):
    path = tmp_path / 'record.pth'
    torch.save({'record': PlainRecord(7)}, path)
    with pytest.raises(pickle.UnpicklingError, match='PlainRecord'):
        load_checkpoint_file(str(path))


def test_mmengine_style_checkpoint_loads_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_checkpoint_policy')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/lr', np.float32(0.25))
    hub.update_info('iter', 3)
    path = tmp_path / 'iter_3.pth'
    torch.save(
        dict(
            meta=dict(
                iter=3,
                seed=np.int64(1),
                shape=np.zeros((2, 2), np.float32),
                dtype=np.dtype('int16')),
            state_dict={'weight': torch.arange(4.)},
            message_hub=hub.state_dict()), path)
    for loaded in (load_checkpoint_file(str(path)),
                   torch.load(path, weights_only=True)):
        assert loaded['meta']['seed'] == 1
        assert loaded['meta']['dtype'] == np.int16
        assert loaded['message_hub']['runtime_info']['iter'] == 3
        loss = loaded['message_hub']['log_scalars']['train/loss']
        assert loss.current() == 0.5
        torch.testing.assert_close(loaded['state_dict']['weight'],
                                   torch.arange(4.))


def test_import_leaves_mmengine_loader_alone():
    assert CheckpointLoader._schemes[''] is load_from_local


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_checkpoint_file(str(tmp_path / 'nowhere.pth'))


@pytest.mark.parametrize('keep', [0.5, 0.05])
def test_truncated_checkpoint_is_named(tmp_path, keep):
    path = tmp_path / 'cut.pth'
    torch.save({'weight': torch.randn(64, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(RuntimeError, match='cut.pth.*truncated'):
        load_checkpoint_file(str(path))


def test_tensor_file_loads(tmp_path):
    path = tmp_path / 'embedding.pt'
    tensor = torch.randn(4, 2, 2).half()
    torch.save(tensor, path)
    torch.testing.assert_close(load_tensor_file(str(path)), tensor)


@pytest.mark.parametrize('attack', sorted(TENSOR_ATTACKS))
def test_code_carrying_tensor_file_is_refused(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    path = TENSOR_ATTACKS[attack](tmp_path / 'embedding.pt', marker)
    with pytest.raises(pickle.UnpicklingError, match='embedding.pt'):
        load_tensor_file(str(path))
    assert not marker.exists()


def test_tensor_file_takes_no_extra_globals(tmp_path):
    """Numpy values pass a checkpoint load but not a tensor-file load."""
    path = tmp_path / 'embedding.pt'
    torch.save(np.float64(1.0), path)
    assert load_checkpoint_file(str(path)) == 1.0
    with pytest.raises(pickle.UnpicklingError, match='scalar'):
        load_tensor_file(str(path))
    torch.save({'tensor': torch.ones(1)}, path)
    with pytest.raises(RuntimeError, match='holds a dict'):
        load_tensor_file(str(path))



@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """A folder served over HTTP on localhost; torch's hub cache in
    tmp_path."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    served = tmp_path / 'served'
    served.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_urls_are_downloaded_then_loaded_weights_only(http_folder, tmp_path,
                                                      attack):
    served, url = http_folder
    torch.save({'weight': torch.ones(3)}, served / 'good.pth')
    local = resolve_checkpoint(f'{url}/good.pth')
    assert local.startswith(str(tmp_path / 'torch_home'))
    torch.testing.assert_close(load_checkpoint_file(local)['weight'],
                               torch.ones(3))
    marker = tmp_path / 'code_ran'
    ATTACKS[attack](served / 'bad.pth', marker, {'weight': torch.ones(3)})
    with pytest.raises(pickle.UnpicklingError, match='bad.pth'):
        load_checkpoint_file(resolve_checkpoint(f'{url}/bad.pth'))
    assert not marker.exists()


def test_other_url_schemes_are_refused():
    with pytest.raises(ValueError, match='s3://bucket/x.pth'):
        resolve_checkpoint('s3://bucket/x.pth')
    assert resolve_checkpoint('work_dirs/x.pth') == 'work_dirs/x.pth'
