# Copyright (c) samref contributors. All rights reserved.
"""The loading policy of ``samref.utils.safe_load``, attack by attack."""
import builtins
import functools
import http.server
import os
import pickle
import random
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner.checkpoint import load_from_local

from malicious_files import (ATTACKS, PROCESS_ATTACKS, TENSOR_ATTACKS,
                             nesting_checkpoint, numpy_pointer_checkpoint,
                             published_name, replace_in_pickle)
from samref.utils import (ForeignObject, load_checkpoint_file,
                          load_tensor_file, resolve_checkpoint,
                          save_tensor_file)
from samref.utils.safe_load import (MAX_NESTING, MAX_PICKLE_OPCODES,
                                    check_structure)
from testing_utils import REPO_ROOT

WEIGHTS = {'weight': torch.arange(6.).reshape(2, 3), 'bias': torch.ones(2)}


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a crash ends that process
    only)."""
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout)


class PlainRecord:
    """A harmless custom class: only full unpickling can rebuild it."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_getattr_payload_is_live_when_getattr_is_allowed(tmp_path):
    """The attack file really runs code wherever ``getattr`` is allowed, as
    it was by the toolbox's earlier allowlist."""
    marker = tmp_path / 'code_ran'
    path = ATTACKS['getattr'](tmp_path / 'a.pth', marker, WEIGHTS)
    with torch.serialization.safe_globals([builtins.getattr]):
        loaded = torch.load(path, weights_only=True)
    assert marker.exists()
    torch.testing.assert_close(loaded['state_dict']['weight'],
                               WEIGHTS['weight'])


def test_case_twin_is_live_when_getattr_is_allowed(tmp_path):
    """torch reads the payload of ``DATA.pkl``, not the harmless
    ``data.pkl`` a case-sensitive scan would look at."""
    marker = tmp_path / 'code_ran'
    path = PROCESS_ATTACKS['case_twin'](tmp_path / 'twin.pth', marker, WEIGHTS)
    with zipfile.ZipFile(path) as archive:
        assert sum(n.endswith('/data.pkl') for n in archive.namelist()) == 1
    with torch.serialization.safe_globals([builtins.getattr]):
        torch.load(path, weights_only=True)
    assert marker.exists()


def test_numpy_pointer_crashes_under_numpy_allowlist(tmp_path):
    """With numpy's dtype and scalar reconstructor allowed (the toolbox's
    earlier allowlist), a 1 KB checkpoint ends the process with SIGSEGV."""
    path = numpy_pointer_checkpoint(tmp_path / 'p.pth', None, WEIGHTS)
    proc = run_python(f"""
        import numpy as np, torch
        from numpy._core.multiarray import scalar
        allowed = [np.dtype, np.dtypes.ObjectDType, scalar]
        with torch.serialization.safe_globals(allowed):
            torch.load({str(path)!r}, weights_only=True)
        """)
    assert proc.returncode == -11, proc.stderr[-500:]


def test_bombs_are_live_for_plain_torch_load(tmp_path):
    """A plain weights-only load of either bomb (a file under 2 MB) grows
    the process by the size it declares; the toolbox's loader refuses both
    without allocating."""
    megabytes = 256
    deflate = PROCESS_ATTACKS['deflate_bomb'](tmp_path / 'd.pth', None,
                                              WEIGHTS, megabytes)
    allocate = PROCESS_ATTACKS['bytearray_bomb'](tmp_path / 'b.pth', None,
                                                 WEIGHTS, megabytes * 2**20)
    assert max(deflate.stat().st_size, allocate.stat().st_size) < 2**21
    proc = run_python(f"""
        import os, pickle, resource, torch
        from samref.utils import load_checkpoint_file
        def peak():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
        def now():
            with open('/proc/self/statm') as f:
                pages = int(f.read().split()[1])
            return pages * os.sysconf('SC_PAGESIZE') >> 20
        before = peak()
        for path in ({str(deflate)!r}, {str(allocate)!r}):
            try:
                load_checkpoint_file(path)
            except (RuntimeError, pickle.UnpicklingError):
                print('refused', path)
        print('ours', peak() - before)
        for path in ({str(deflate)!r}, {str(allocate)!r}):
            start = now()
            loaded = torch.load(path, weights_only=True)
            print('plain', now() - start)
            del loaded
        """)
    lines = proc.stdout.split('\n')
    assert lines.count(f'refused {deflate}') == 1, proc.stderr[-2000:]
    assert lines.count(f'refused {allocate}') == 1
    assert int(next(li for li in lines if li.startswith('ours')).split()[1]) \
        < 32
    grown = [int(li.split()[1]) for li in lines if li.startswith('plain')]
    assert len(grown) == 2 and min(grown) > megabytes * 0.9, grown


def test_import_leaves_torch_safe_globals_alone():
    proc = run_python("""
        import mmengine.runner, mmseg.apis, mmseg.models, torch
        import torch.distributed.tensor  # registers torch's own classes
        def names():
            return sorted(
                item[1] if isinstance(item, tuple) else
                f'{item.__module__}.{item.__qualname__}'
                for item in torch.serialization.get_safe_globals())
        before = names()
        import samref, samref.apis, samref.datasets, samref.engine
        import samref.models, samref.utils
        assert names() == before, sorted(set(names()) ^ set(before))
        print(len(before))
        """)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_import_leaves_mmengine_loader_alone():
    assert CheckpointLoader._schemes[''] is load_from_local


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_code_carrying_checkpoint_is_refused(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    path = ATTACKS[attack](tmp_path / 'carrier.pth', marker, WEIGHTS)
    for drop in (False, True):
        with pytest.raises(pickle.UnpicklingError) as error:
            load_checkpoint_file(str(path), drop_foreign_objects=drop)
        assert str(path) in str(error.value)
        assert ('getattr' if attack == 'getattr' else 'mkdir') in str(
            error.value)
        assert not marker.exists()


@pytest.mark.parametrize('attack', sorted(ATTACKS))
def test_code_carrying_checkpoint_is_refused_through_mmengine(
        tmp_path, attack):
    """mmengine's own loader (torch.load's default weights-only load, with
    no global added by samref) refuses it too."""
    marker = tmp_path / 'code_ran'
    path = ATTACKS[attack](tmp_path / 'carrier.pth', marker, {
        'weight': torch.ones(2, 1)
    })
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(1, 2, bias=False), str(path))
    assert not marker.exists()


@pytest.mark.parametrize('attack,reason', [
    ('numpy_pointer', r'numpy values \(numpy._core.multiarray.scalar, '
     r'numpy.dtype\).*--drop-foreign-objects'),
    ('case_twin', r"'carrier/data.pkl' and 'carrier/DATA.pkl'"),
    ('deflate_bomb', r'declare \d+ bytes, more than 2 times'),
    ('bytearray_bomb', r'bytearray.*cannot be replaced'),
    ('nesting', f'nest more than {MAX_NESTING} deep'),
    ('shared_lists', 'expand to more than'),
    ('altered_published', r'published checkpoint with SHA-256 \w{8}'),
])
def test_process_attack_is_refused_with_the_file_named(tmp_path, attack,
                                                       reason):
    marker = tmp_path / 'code_ran'
    size = dict(deflate_bomb=(64, ))  # MB: the check reads no record
    path = PROCESS_ATTACKS[attack](tmp_path / 'carrier.pth', marker, WEIGHTS,
                                   *size.get(attack, ()))
    with pytest.raises((pickle.UnpicklingError, RuntimeError),
                       match=reason) as error:
        load_checkpoint_file(str(path))
    assert f'Refused to load {path}: ' in str(error.value)
    assert not marker.exists()


def test_shared_lists_load_for_plain_torch(tmp_path):
    """torch builds the 64 shared lists at once; only a walk that ignores
    the sharing (``==``, ``repr``, a recursive copy) meets 2**63 items."""
    path = PROCESS_ATTACKS['shared_lists'](tmp_path / 's.pth', None, WEIGHTS)
    lists = torch.load(path, weights_only=True)['meta']['note']
    assert len(lists) == 64
    assert all(a[0] is b and a[1] is b for a, b in zip(lists[1:], lists))


def test_opcode_limit_refuses_million_object_pickles(tmp_path):
    path = nesting_checkpoint(tmp_path / 'deep.pth', None, WEIGHTS, 10**6)
    with pytest.raises(RuntimeError, match=f'more than {MAX_PICKLE_OPCODES}'):
        load_checkpoint_file(str(path))


def test_structure_check_counts_shared_containers_once():
    shared = [torch.ones(1)] * 8
    check_structure({'a': shared, 'b': shared, 'tied': WEIGHTS}, 'f.pth')
    deep: list = []
    node = deep
    for _ in range(MAX_NESTING - 1):
        node.append([])
        node = node[0]
    check_structure(deep, 'f.pth')  # exactly at the limit
    node.append([])
    with pytest.raises(RuntimeError, match='f.pth: its containers nest'):
        check_structure(deep, 'f.pth')
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(RuntimeError, match='contains itself'):
        check_structure({'x': cycle}, 'f.pth')


def test_cyclic_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'cycle.pth'
    torch.save(dict(state_dict=WEIGHTS, meta=dict(note='SLOT')), path)
    slot = b'X' + struct.pack('<I', 4) + b'SLOT'
    # A list put in the memo and appended to itself.
    cycle = b']r' + struct.pack('<I', 9999) + b'j' + struct.pack('<I',
                                                                 9999) + b'a'
    replace_in_pickle(path, slot, cycle)
    with pytest.raises(RuntimeError, match='contains itself'):
        load_checkpoint_file(str(path))


def mmengine_checkpoint(path, numpy_names: str = 'numpy._core') -> None:
    """A checkpoint as another mmengine project writes it: numpy values and
    message-hub history buffers next to the weights."""
    hub = MessageHub.get_instance('test_foreign_checkpoint')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('iter', 3)
    torch.save(
        dict(
            meta=dict(iter=3, seed=np.int64(1), dtype=np.dtype('int16')),
            state_dict=WEIGHTS,
            message_hub=hub.state_dict()), path)
    if numpy_names != 'numpy._core':
        replace_in_pickle(
            path,
            b'numpy._core.multiarray',
            f'{numpy_names}.multiarray'.encode(),
            count=None)


def test_checkpoint_of_another_mmengine_project_needs_the_opt_in(tmp_path):
    path = tmp_path / 'iter_3.pth'
    mmengine_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError) as error:
        load_checkpoint_file(str(path))
    message = str(error.value)
    for part in (str(path), 'numpy values', 'numpy.dtype',
                 'history buffers of an mmengine message hub', 'getattr',
                 '--drop-foreign-objects', 'drop_foreign_objects=True'):
        assert part in message
    loaded = load_checkpoint_file(str(path), drop_foreign_objects=True)
    for key, value in WEIGHTS.items():
        torch.testing.assert_close(loaded['state_dict'][key], value)
    assert loaded['meta']['iter'] == 3
    assert isinstance(loaded['meta']['seed'], ForeignObject)
    assert repr(loaded['meta']['seed']) == \
        '<dropped numpy._core.multiarray.scalar>'
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'],
                      ForeignObject)
    assert not any('numpy' in str(item)
                   for item in torch.serialization.get_safe_globals())


def test_numpy_1x_names_are_named_as_such(tmp_path):
    path = tmp_path / 'old.pth'
    mmengine_checkpoint(path, numpy_names='numpy.core')
    with pytest.raises(
            pickle.UnpicklingError,
            match='numpy values pickled under numpy 1.x names '
            r'\(numpy.core.multiarray._reconstruct, '
            r'numpy.core.multiarray.scalar\).*opt in'):
        load_checkpoint_file(str(path))
    loaded = load_checkpoint_file(str(path), drop_foreign_objects=True)
    torch.testing.assert_close(loaded['state_dict']['bias'], WEIGHTS['bias'])


def test_dropped_numpy_pointer_is_inert(tmp_path):
    """With the opt-in, the numpy pointer becomes a placeholder: numpy is
    never called (in a subprocess, so a crash cannot take pytest down)."""
    path = numpy_pointer_checkpoint(tmp_path / 'p.pth', None, WEIGHTS)
    proc = run_python(f"""
        from samref.utils import ForeignObject, load_checkpoint_file
        loaded = load_checkpoint_file({str(path)!r},
                                      drop_foreign_objects=True)
        assert isinstance(loaded['meta']['note'], ForeignObject)
        print(sorted(loaded['state_dict']))
        """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['bias', 'weight']" in proc.stdout


def test_custom_classes_are_refused(tmp_path):
    path = tmp_path / 'record.pth'
    torch.save({'record': PlainRecord(7)}, path)
    with pytest.raises(pickle.UnpicklingError, match='PlainRecord'):
        load_checkpoint_file(str(path))


def test_own_plain_checkpoint_loads(tmp_path):
    path = tmp_path / 'plain.pth'
    checkpoint = dict(
        state_dict=WEIGHTS,
        meta=dict(
            iter=3,
            lr=[0.1, 0.2],
            shape=torch.Size([2, 3]),
            device=torch.device('cpu'),
            dtype=torch.float16,
            blob=b'\x00\x01',
            name='x'))
    torch.save(checkpoint, path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['meta'] == checkpoint['meta']


def test_published_checkpoint_is_verified(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save(dict(state_dict=WEIGHTS), path)
    published = published_name(path)
    loaded = load_checkpoint_file(str(published))
    torch.testing.assert_close(loaded['state_dict']['bias'], WEIGHTS['bias'])
    wrong = published.rename(tmp_path / 'model-00000000.pth')
    with pytest.raises(RuntimeError, match='model-00000000.pth: its name'):
        load_checkpoint_file(str(wrong))


def test_fuzzed_checkpoints_load_or_fail_naming_the_file(tmp_path):
    """Random byte changes in a toolbox checkpoint either load or raise the
    loader's own errors, which name the file; nothing else escapes."""
    path = tmp_path / 'fuzz.pth'
    torch.save(
        dict(state_dict=WEIGHTS, meta=dict(iter=1, names=['a', 'b'])), path)
    original = path.read_bytes()
    rng = random.Random(0)
    outcomes = {'loaded': 0, 'refused': 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            load_checkpoint_file(str(path))
            outcomes['loaded'] += 1
        except (RuntimeError, pickle.UnpicklingError) as error:
            assert str(path) in str(error)
            outcomes['refused'] += 1
    assert outcomes['refused'] > 50


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


@pytest.mark.parametrize('dtype',
                         [torch.float32, torch.float16, torch.bfloat16])
def test_tensor_file_round_trip(tmp_path, dtype):
    path = tmp_path / 'embedding.safetensors'
    tensor = torch.randn(4, 2, 2).to(dtype)
    save_tensor_file(tensor[:, 1], str(path))  # a non-contiguous view
    loaded = load_tensor_file(str(path))
    assert loaded.dtype == dtype
    torch.testing.assert_close(loaded, tensor[:, 1])
    assert sorted(os.listdir(tmp_path)) == ['embedding.safetensors']


@pytest.mark.parametrize('attack', sorted(TENSOR_ATTACKS))
def test_pickled_tensor_file_is_not_read(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    path = TENSOR_ATTACKS[attack](tmp_path / 'embedding.pt', marker)
    with pytest.raises(
            RuntimeError, match='embedding.pt: it is not a safetensors file'):
        load_tensor_file(str(path))
    assert not marker.exists()


def test_bad_tensor_files_are_named(tmp_path):
    path = tmp_path / 'bad.safetensors'
    path.write_bytes(struct.pack('<Q', 2**40) + b'{}')
    with pytest.raises(RuntimeError, match='bad.safetensors.*header of at'):
        load_tensor_file(str(path))
    save_tensor_file(torch.ones(100), str(path))
    data = path.read_bytes()
    path.write_bytes(data[:-8])
    with pytest.raises(RuntimeError, match='bad.safetensors.*truncated'):
        load_tensor_file(str(path))
    from safetensors.torch import save_file
    save_file({'a': torch.ones(1), 'b': torch.ones(1)}, str(path))
    with pytest.raises(RuntimeError, match=r"holds the tensors \['a', 'b'\]"):
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
def test_urls_are_downloaded_then_loaded_under_the_policy(
        http_folder, tmp_path, attack):
    served, url = http_folder
    torch.save({'weight': torch.ones(3)}, served / 'good.pth')
    local = resolve_checkpoint(f'{url}/good.pth')
    assert local.startswith(str(tmp_path / 'torch_home'))
    torch.testing.assert_close(
        load_checkpoint_file(local)['weight'], torch.ones(3))
    marker = tmp_path / 'code_ran'
    ATTACKS[attack](served / 'bad.pth', marker, {'weight': torch.ones(3)})
    with pytest.raises(pickle.UnpicklingError, match='bad.pth'):
        load_checkpoint_file(resolve_checkpoint(f'{url}/bad.pth'))
    assert not marker.exists()


def test_published_url_is_checked_while_downloading(http_folder):
    served, url = http_folder
    torch.save({'weight': torch.ones(3)}, served / 'model.pth')
    published_name(served / 'model.pth')
    name = next(p.name for p in served.iterdir())
    (served / 'model-00000000.pth').write_bytes((served / name).read_bytes())
    local = resolve_checkpoint(f'{url}/{name}')
    torch.testing.assert_close(
        load_checkpoint_file(local)['weight'], torch.ones(3))
    with pytest.raises(RuntimeError, match='invalid hash value'):
        resolve_checkpoint(f'{url}/model-00000000.pth')


def test_other_url_schemes_are_refused():
    with pytest.raises(ValueError, match='s3://bucket/x.pth'):
        resolve_checkpoint('s3://bucket/x.pth')
    assert resolve_checkpoint('work_dirs/x.pth') == 'work_dirs/x.pth'
