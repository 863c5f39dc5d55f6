# Copyright (c) samref contributors. All rights reserved.
"""Checkpoint and tensor files that run code when unpickled, for the tests
of the loading policy.

Each payload creates a marker directory when it runs, so a test asserts
that the marker does not exist after a refused load.
"""
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

SENTINEL = 'samref-test-payload-goes-here'


class ReduceCarrier:
    """Plain pickling attack: unpickling calls ``os.mkdir(path)``."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path, )


def _string(text: str) -> bytes:
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data  # BINUNICODE


def getattr_eval_payload(marker: str) -> bytes:
    """Pickle opcodes that reach ``builtins.eval`` through ``getattr`` and
    run it through a tensor rebuild function torch allows by default.

    ``getattr(getattr, '__self__')`` is the ``builtins`` module,
    ``getattr(builtins, 'eval')`` is ``eval``, and
    ``torch._tensor._rebuild_from_type_v2(eval, torch.Tensor, (code, ), {})``
    calls it. The code creates ``marker`` and evaluates to a tensor, so the
    rest of the load goes on normally.
    """
    code = (f'(__import__("os").mkdir({str(marker)!r}), '
            '__import__("torch").zeros(1))[1]')
    getattr_ = b'cbuiltins\ngetattr\n'
    builtins_module = getattr_ + b'(' + getattr_ + _string('__self__') + b'tR'
    eval_function = getattr_ + b'(' + builtins_module + _string('eval') + b'tR'
    return (b'ctorch._tensor\n_rebuild_from_type_v2\n(' + eval_function +
            b'ctorch\nTensor\n(' + _string(code) + b't}tR')


def replace_in_pickle(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes in the ``data.pkl`` of a ``torch.save`` zip file."""
    with zipfile.ZipFile(path) as archive:
        records = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for info, data in records:
            if info.filename.endswith('/data.pkl'):
                assert data.count(old) == 1, 'payload slot not found'
                data = data.replace(old, new)
            archive.writestr(info, data)


def save_getattr_attack(obj: Any, path: Path, marker: Path) -> Path:
    """``torch.save(obj)`` with :data:`SENTINEL` in ``obj`` replaced by
    :func:`getattr_eval_payload` in the saved pickle."""
    torch.save(obj, path)
    replace_in_pickle(path, _string(SENTINEL),
                      getattr_eval_payload(str(marker)))
    return path


def getattr_attack_checkpoint(path: Path, marker: Path,
                              state_dict: dict) -> Path:
    """A checkpoint with real weights and the ``getattr`` payload in its
    meta."""
    return save_getattr_attack(
        dict(state_dict=state_dict, meta=dict(note=SENTINEL)), path, marker)


def reduce_attack_checkpoint(path: Path, marker: Path,
                             state_dict: dict) -> Path:
    """A checkpoint with real weights and a ``__reduce__`` payload."""
    torch.save(
        dict(state_dict=state_dict, meta=dict(note=ReduceCarrier(marker))),
        path)
    return path


ATTACKS = dict(getattr=getattr_attack_checkpoint,
               reduce=reduce_attack_checkpoint)


def getattr_attack_tensor(path: Path, marker: Path) -> Path:
    """A "tensor file" whose pickle is the ``getattr`` payload only."""
    return save_getattr_attack(SENTINEL, path, marker)


def reduce_attack_tensor(path: Path, marker: Path) -> Path:
    """A "tensor file" that holds a ``__reduce__`` payload."""
    torch.save(ReduceCarrier(marker), path)
    return path


TENSOR_ATTACKS = dict(getattr=getattr_attack_tensor,
                      reduce=reduce_attack_tensor)
