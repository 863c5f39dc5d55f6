# Copyright (c) samref contributors. All rights reserved.
"""The toolbox's loading policy: a file it loads can neither run code, nor
crash the process, nor make it exhaust its memory.

Checkpoints (SAM's weights, ``load_from``, ``--resume``, the checkpoint of
the tools, :func:`samref.apis.init_model`) are read by
:func:`load_checkpoint_file`, in this order:

1. A file name that carries the hash of a published checkpoint, as
   OpenMMLab model zoos and ``tools/misc/publish_model.py`` name them
   (``name-<first 8 hex digits of its SHA-256>.pth``), must match the
   file's content.
2. The zip container ``torch.save`` writes is checked before anything is
   decompressed: the sizes its records declare must add up to at most
   :data:`MAX_ZIP_EXPANSION` times the file's size (``torch.save`` stores
   records uncompressed; a deflated record can declare gigabytes), and no
   two records may have names that differ only in case (torch finds
   records regardless of case, so a twin could hide a second pickle).
3. The pickle's opcodes are read without running it (``pickletools``):
   at most :data:`MAX_PICKLE_OPCODES` (each makes at most one object, so
   a pickle cannot make millions of them), and the globals it names are
   listed. A checkpoint of SAM or of this toolbox names only
   tensor and parameter rebuilding, storage classes, ``OrderedDict``,
   ``torch.Size``, ``torch.device``, dtypes and ``_codecs.encode``
   (:data:`CHECKPOINT_GLOBALS`). Anything else is refused with the file
   and the names, including functions of torch's own weights-only
   allowlist that such files never use: ``bytearray(n)`` alone makes a
   100-byte pickle allocate ``n`` bytes.
4. The file is read with ``torch.load(weights_only=True)`` and no global
   beyond torch's own: nothing is registered with
   ``torch.serialization`` by importing samref.
5. The loaded object may nest containers at most :data:`MAX_NESTING`
   deep, expand to at most :data:`MAX_EXPANDED_ITEMS` items when shared
   containers are counted once per reference, and hold no reference
   cycle: code that walks it recursively (mmengine's resume) can then
   neither overflow the stack nor run for ever.

Checkpoints of other mmengine projects hold numpy values and history
buffers in their message hub and meta. Their weights load only with
``drop_foreign_objects=True`` (``--drop-foreign-objects`` of the tools):
every such object is then replaced by an inert :class:`ForeignObject`
placeholder that keeps nothing of the file's data, so nothing numpy or
mmengine would run on unpickling is run.

Tensor files (the evaluation's embedding cache, pre-extracted embeddings)
are safetensors files, a format that holds data and no code path at all:
:func:`save_tensor_file`, :func:`load_tensor_file`.
"""
import hashlib
import io
import os
import os.path as osp
import pickle
import pickletools
import re
import struct
import tempfile
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import _weights_only_unpickler

# Declared sizes of a checkpoint's zip records, summed, against its size.
MAX_ZIP_EXPANSION = 2
# Opcodes of a checkpoint's pickle: each makes at most one object, of 50 to
# 100 bytes (a ViT-H checkpoint with its optimizer state has about 50000).
MAX_PICKLE_OPCODES = 1_000_000
# Containers in a loaded checkpoint: nesting depth, and items counted once
# per reference (a shared container once per place it is referred from).
MAX_NESTING = 64
MAX_EXPANDED_ITEMS = 10_000_000
# The JSON header of a tensor file (ours are a few hundred bytes).
MAX_TENSOR_HEADER_BYTES = 1 << 20
# A published checkpoint's name ends in the first 8 hex digits of the
# file's SHA-256.
PUBLISHED_NAME = re.compile(r'-(?P<digest>[0-9a-f]{8})\.pth$')
TENSOR_FILE_KEY = 'tensor'

# The globals a checkpoint of SAM or of this toolbox names.
CHECKPOINT_GLOBALS = re.compile(
    r'^(collections\.OrderedDict|_codecs\.encode|'
    r'torch\._utils\._rebuild_(tensor|tensor_v2|parameter|'
    r'parameter_with_state)|torch\.[A-Za-z0-9]+Storage|torch\.Size|'
    r'torch\.device|torch\.(bool|u?int[0-9]+|b?float[0-9a-z_]*|'
    r'complex[0-9]+))$')

# What a refused global is, for messages: the first pattern that matches.
FOREIGN_KINDS = (
    (re.compile(r'^numpy\.core\.'),
     'numpy values pickled under numpy 1.x names'),
    (re.compile(r'^numpy\.'), 'numpy values'),
    (re.compile(r'^mmengine\.logging\.history_buffer\.'),
     "history buffers of an mmengine message hub"),
    (re.compile(r'^builtins\.getattr$'),
     'getattr, which reaches any attribute of what it is given'),
    (re.compile(r'^builtins\.bytearray$'),
     'bytearray, which allocates as many bytes as the file asks for'),
    (re.compile(r'^(torch|_codecs|collections)\.'),
     'torch functions that such checkpoints never use'),
)
STACK_GLOBAL = '<a global built on the pickle stack>'

DROP_HINT = ('To load only its tensors and plain data (the weights of a '
             'checkpoint of another mmengine project), opt in with '
             '--drop-foreign-objects (tools) or drop_foreign_objects=True '
             '(Python): each such object then becomes an inert '
             'placeholder and nothing of it is run.')


class ForeignObject:
    """What an object beyond tensors and plain data becomes when a
    checkpoint is loaded with ``drop_foreign_objects=True``.

    It takes whatever the pickle passes to the class it stands for and
    keeps none of it, so loading calls nothing of numpy, mmengine or any
    other package. :func:`foreign_object_class` makes one subclass per
    global name, whose name says what was dropped.
    """

    global_name = ''

    def __new__(cls, *args: Any, **kwargs: Any) -> 'ForeignObject':
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f'<dropped {self.global_name}>'


def foreign_object_class(global_name: str) -> Type[ForeignObject]:
    """A :class:`ForeignObject` class standing for one global.

    Args:
        global_name (str): E.g. ``'numpy.dtype'``.

    Returns:
        type: The placeholder class.
    """
    return type('ForeignObject', (ForeignObject, ),
                dict(global_name=global_name))


def describe_globals(names: List[str]) -> str:
    """The refused globals grouped by what they are.

    Args:
        names (list[str]): Global names.

    Returns:
        str: E.g. ``'numpy values (numpy.dtype, numpy._core.multiarray.
        scalar); Python objects (mymodule.Record)'``.
    """
    groups: Dict[str, List[str]] = {}
    for name in names:
        kind = next(
            (kind for pattern, kind in FOREIGN_KINDS if pattern.match(name)),
            'Python objects')
        groups.setdefault(kind, []).append(name)
    return '; '.join(f'{kind} ({", ".join(members)})'
                     for kind, members in groups.items())


def existing_file(filename: Union[str, os.PathLike], what: str) -> str:
    """The expanded path of a file that exists.

    Args:
        filename (str | PathLike): The path.
        what (str): What the file is, for the message.

    Returns:
        str: The path, ``~`` expanded.

    Raises:
        FileNotFoundError: It is not a file.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{what} {filename} does not exist')
    return filename


def verify_published_hash(filename: str) -> None:
    """Check a published checkpoint's content against its file name.

    mmseg's ``tools/misc/publish_model.py`` names a checkpoint
    ``<name>-<the first 8 hex digits of its SHA-256>.pth``; a file named so
    must have that hash. Other names are not checked.

    Args:
        filename (str): The checkpoint.

    Raises:
        RuntimeError: The content does not match the name.
    """
    match = PUBLISHED_NAME.search(osp.basename(filename))
    if match is None:
        return
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    actual = digest.hexdigest()
    if not actual.startswith(match['digest']):
        raise RuntimeError(
            f'Refused to load {filename}: its name says it is the published '
            f'checkpoint with SHA-256 {match["digest"]}..., but its '
            f'SHA-256 is {actual[:8]}...: the file is corrupt, altered or '
            'not the one published. Download it again, or rename it if the '
            "suffix is no hash (mmseg 1.x's tools/misc/publish_model.py "
            'names its output after the hash of its input; samref\'s '
            'tools/misc/publish_model.py after the output\'s).')


def zip_problem(records: List[zipfile.ZipInfo], size: int) -> Optional[str]:
    """Why a ``torch.save`` zip file must not be read, if it must not.

    Args:
        records (list[zipfile.ZipInfo]): Its records.
        size (int): Its size in bytes.

    Returns:
        str | None: The reason, or None.
    """
    folded: Dict[str, str] = {}
    for record in records:
        twin = folded.setdefault(record.filename.lower(), record.filename)
        if twin != record.filename:
            return (f'it holds records {twin!r} and {record.filename!r}, '
                    'whose names differ only in case; torch finds records '
                    'regardless of case, so it may read either')
    declared = sum(record.file_size for record in records)
    if declared > MAX_ZIP_EXPANSION * size:
        return (f'its records declare {declared} bytes, more than '
                f'{MAX_ZIP_EXPANSION} times the file\'s {size} bytes '
                '(torch.save stores records uncompressed; a compressed '
                'record this large is a decompression bomb)')
    pickles = [r for r in records if r.filename.lower().endswith('/data.pkl')]
    if len(pickles) != 1:
        return (f'it holds {len(pickles)} data.pkl records, a file written '
                'by torch.save holds one')
    return None


def checked_pickle(filename: str, what: str) -> bytes:
    """The pickle of a ``torch.save`` zip file, read after
    :func:`zip_problem` found nothing wrong with the zip.

    Args:
        filename (str): The file.
        what (str): What the file is, for messages.

    Returns:
        bytes: The ``data.pkl`` record.

    Raises:
        RuntimeError: It is not such a zip file, or :func:`zip_problem`
            refuses it.
    """
    try:
        with zipfile.ZipFile(filename) as archive:
            records = archive.infolist()
            problem = zip_problem(records, osp.getsize(filename))
            data = b'' if problem else archive.read(
                next(r for r in records
                     if r.filename.lower().endswith('/data.pkl')))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as error:
        raise RuntimeError(
            f'Cannot read {what} {filename}: it is truncated, corrupt or '
            'not a zip file written by torch.save (torch >= 1.6; the '
            f'legacy format is not read): {error}') from None
    if problem:
        raise RuntimeError(f'Refused to load {filename}: {problem}')
    return data


def scan_pickle(data: bytes) -> Tuple[List[str], int]:
    """The globals a pickle names and its number of opcodes, found without
    running it.

    Args:
        data (bytes): The pickle.

    Returns:
        tuple[list[str], int]: ``module.name`` of each ``GLOBAL`` and
        ``INST``, with Python 2 names mapped as unpicklers map them
        (``__builtin__.getattr`` is ``builtins.getattr``), and
        :data:`STACK_GLOBAL` for a global built on the stack (which
        torch's weights-only unpickler does not read); and the number of
        opcodes: each builds at most one object, so it bounds the
        objects the pickle makes.

    Raises:
        ValueError: The pickle is malformed.
    """
    found = []
    count = 0
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        count += 1
        if opcode.name in ('GLOBAL', 'INST'):
            # Python 2 names (``__builtin__``) as unpicklers resolve them.
            module, name = arg.split(' ', 1)
            module, name = NAME_MAPPING.get(
                (module, name), (IMPORT_MAPPING.get(module, module), name))
            found.append(f'{module}.{name}')
        elif opcode.name == 'STACK_GLOBAL':
            found.append(STACK_GLOBAL)
    return found, count


def _loading_error(filename: str, what: str,
                   error: BaseException) -> Exception:
    """The error to raise for an error of ``torch.load``."""
    if isinstance(error, pickle.UnpicklingError):
        text = str(error)
        if 'WeightsUnpickler error:' in text:
            text = text.split('WeightsUnpickler error:')[-1].split(
                'Check the documentation')[0]
        reason = ' '.join(text.split())
        return pickle.UnpicklingError(f'Refused to load {filename}: {reason}')
    if isinstance(error, MemoryError):
        return RuntimeError(f'Cannot read {what} {filename}: it needs more '
                            'memory than is available')
    return RuntimeError(
        f'Cannot read {what} {filename}: it is truncated, corrupt or not a '
        f'file written by torch.save ({type(error).__name__}: {error})')


def check_structure(obj: Any, filename: str) -> None:
    """Refuse containers nested or shared beyond the limits, and cycles.

    Args:
        obj (Any): The loaded object.
        filename (str): Its file, for messages.

    Raises:
        RuntimeError: Nesting deeper than :data:`MAX_NESTING`, more than
            :data:`MAX_EXPANDED_ITEMS` items counted per reference, or a
            container that contains itself.
    """
    containers = (dict, list, tuple, set, frozenset)

    def children(item: Any) -> list:
        if isinstance(item, dict):
            return [*item.keys(), *item.values()]
        return list(item)

    done: Dict[int, Tuple[int, int]] = {}  # id -> (depth, expanded items)
    on_path = set()
    stack: List[Tuple[Any, bool]] = [(obj, False)]
    while stack:
        item, finished = stack.pop()
        if not isinstance(item, containers):
            continue
        key = id(item)
        if finished:
            on_path.discard(key)
            parts = [
                done[id(child)] if isinstance(child, containers) else (0, 1)
                for child in children(item)
            ]
            depth = 1 + max((d for d, _ in parts), default=0)
            items = 1 + sum(n for _, n in parts)
            if depth > MAX_NESTING:
                raise RuntimeError(
                    f'Refused to load {filename}: its containers '
                    f'nest more than {MAX_NESTING} deep')
            if items > MAX_EXPANDED_ITEMS:
                raise RuntimeError(
                    f'Refused to load {filename}: its shared '
                    f'containers expand to more than {MAX_EXPANDED_ITEMS} '
                    'items')
            done[key] = (depth, items)
            continue
        if key in done:
            continue
        if key in on_path:
            raise RuntimeError(f'Refused to load {filename}: a '
                               'container in it contains itself')
        on_path.add(key)
        stack.append((item, True))
        stack.extend((child, False) for child in children(item))


def load_checkpoint_file(filename: Union[str, os.PathLike],
                         map_location: Union[str, Callable, None] = None,
                         drop_foreign_objects: bool = False) -> Any:
    """Load a checkpoint under the toolbox's loading policy.

    See the module's documentation for the checks, in order.

    Args:
        filename (str | PathLike): Path of the file.
        map_location (str | Callable, optional): As for ``torch.load``.
        drop_foreign_objects (bool): Replace each object beyond tensors and
            plain data (numpy values, mmengine's history buffers, any
            class) by an inert :class:`ForeignObject` instead of refusing
            the file. Defaults to False.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: The file does not exist.
        pickle.UnpicklingError: It names globals beyond those of
            :data:`CHECKPOINT_GLOBALS` (and, with
            ``drop_foreign_objects``, globals that cannot be replaced); the
            message names the file and them.
        RuntimeError: Its name's hash does not match, it is a
            decompression bomb, truncated, corrupt, nested or shared beyond
            the limits, or not a checkpoint.
    """
    what = 'checkpoint'
    filename = existing_file(filename, what)
    verify_published_hash(filename)
    try:
        names, opcodes = scan_pickle(checked_pickle(filename, what))
    except ValueError as error:
        raise RuntimeError(f'Cannot read {what} {filename}: its pickle is '
                           f'malformed ({error})') from None
    if opcodes > MAX_PICKLE_OPCODES:
        raise RuntimeError(
            f'Refused to load {filename}: its pickle has {opcodes} opcodes, '
            f'more than {MAX_PICKLE_OPCODES}; unpickled, it would make as '
            'many objects (checkpoints of SAM and of this toolbox have tens '
            'of thousands)')
    refused = sorted({n for n in names if not CHECKPOINT_GLOBALS.match(n)})
    placeholders: List[Tuple[type, str]] = []
    if refused:
        # Globals of torch's own allowlist resolve before any registered
        # one, so they cannot be replaced; neither can stack globals.
        fixed = sorted(
            set(refused) & (set(_weights_only_unpickler._get_allowed_globals())
                            | {STACK_GLOBAL}))
        if fixed or not drop_foreign_objects:
            advice = DROP_HINT if not fixed else (
                f'{", ".join(fixed)} cannot be replaced by placeholders '
                "(torch's unpickler resolves them itself), so the file "
                'cannot be loaded.')
            raise pickle.UnpicklingError(
                f'Refused to load {filename}: it holds objects beyond '
                f'tensors and plain data: {describe_globals(refused)}. '
                'Unpickling them could run code from the file, crash the '
                'process or exhaust its memory; checkpoints of SAM and of '
                f'this toolbox hold none. {advice}')
        registered = {
            item[1] if isinstance(item, tuple) else
            f'{item.__module__}.{item.__qualname__}'
            for item in torch.serialization.get_safe_globals()
        }
        if registered & set(refused):
            raise pickle.UnpicklingError(
                f'Refused to load {filename}: this process registered '
                f'{", ".join(sorted(registered & set(refused)))} with '
                'torch.serialization.add_safe_globals, so they cannot be '
                'replaced by placeholders')
        placeholders = [(foreign_object_class(n), n) for n in refused]
    try:
        with torch.serialization.safe_globals(placeholders):
            checkpoint = torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - every reason, file named
        raise _loading_error(filename, what, error) from error
    check_structure(checkpoint, filename)
    return checkpoint


def save_tensor_file(tensor: torch.Tensor, filename: str) -> None:
    """Write one tensor as a safetensors file, atomically.

    Args:
        tensor (torch.Tensor): The tensor (any device).
        filename (str): The file; its folder must exist.
    """
    handle, tmp = tempfile.mkstemp(
        dir=osp.dirname(osp.abspath(filename)), suffix='.tmp')
    os.close(handle)
    try:
        save_file({TENSOR_FILE_KEY: tensor.detach().cpu().contiguous()}, tmp)
        os.replace(tmp, filename)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def load_tensor_file(filename: Union[str, os.PathLike],
                     device: Union[str, torch.device] = 'cpu') -> torch.Tensor:
    """Read a tensor file written by :func:`save_tensor_file`.

    Args:
        filename (str | PathLike): The file.
        device (str | torch.device): Where to put the tensor. Defaults to
            ``'cpu'``.

    Returns:
        torch.Tensor: The tensor.

    Raises:
        FileNotFoundError: The file does not exist.
        RuntimeError: It is not a safetensors file holding exactly one
            tensor, its header is larger than
            :data:`MAX_TENSOR_HEADER_BYTES`, or it is truncated or corrupt.
    """
    what = 'tensor file'
    filename = existing_file(filename, what)
    with open(filename, 'rb') as f:
        head = f.read(8)
    header = struct.unpack('<Q', head)[0] if len(head) == 8 else None
    if header is None or header > min(MAX_TENSOR_HEADER_BYTES,
                                      osp.getsize(filename) - 8):
        raise RuntimeError(
            f'Cannot read {what} {filename}: it is not a safetensors file '
            f'with a header of at most {MAX_TENSOR_HEADER_BYTES} bytes')
    try:
        tensors = load_file(filename, device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise RuntimeError(f'Cannot read {what} {filename}: it is '
                           f'truncated or corrupt ({error})') from None
    if list(tensors) != [TENSOR_FILE_KEY]:
        raise RuntimeError(
            f'Cannot read {what} {filename}: it holds the tensors '
            f'{sorted(tensors)}, a tensor file holds one named '
            f'{TENSOR_FILE_KEY!r}')
    return tensors[TENSOR_FILE_KEY]


def resolve_checkpoint(filename: str) -> str:
    """The local file of a checkpoint path or ``http(s)://`` URL.

    A URL is downloaded once into torch's hub cache (``TORCH_HOME``); when
    its file name carries a published checkpoint's hash, the download is
    checked against it.

    Args:
        filename (str): A local path or an ``http(s)://`` URL.

    Returns:
        str: The local path.

    Raises:
        ValueError: Another URL scheme.
        RuntimeError: The download does not match the hash in its name.
    """
    filename = str(filename)
    if not filename.startswith(('http://', 'https://')):
        if re.match(r'^[a-z][a-z0-9+.-]*://', filename):
            raise ValueError(f'Cannot load {filename}: give a local file '
                             'or an http(s):// URL')
        return filename
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    name = osp.basename(filename.split('?')[0])
    path = osp.join(folder, name)
    if not osp.isfile(path):
        match = PUBLISHED_NAME.search(name)
        try:
            torch.hub.download_url_to_file(
                filename, path, hash_prefix=match['digest'] if match else None)
        except RuntimeError as error:  # the hash check
            raise RuntimeError(f'Refused the download of {filename}: '
                               f'{error}') from None
    return path
