# Copyright (c) samref contributors. All rights reserved.
"""The toolbox's loading policy: nothing it loads can run code.

Unpickling a file can run code stored in it, so every file is read with
``torch.load(weights_only=True)``, whose unpickler builds tensors and plain
containers and calls only the functions of an allowlist:

- checkpoints (pretrained SAM weights, ``load_from``, resumed training, the
  checkpoint given to the tools) may also hold what mmengine writes into its
  own checkpoints, and nothing more: numpy arrays, scalars and dtypes and
  message-hub history buffers (what a checkpoint of a training run needs
  beyond torch's defaults). :func:`safe_checkpoint_globals` lists exactly
  those classes and reconstructors. None of them returns an object chosen
  by the file (as ``getattr``, ``eval`` or a module would), so the allowlist
  cannot be used to reach other code: the ``getattr`` that pickles of
  history buffers call resolves their statistics methods only
  (:func:`history_buffer_method`).
- tensor files (pre-extracted embeddings, the evaluation embedding cache)
  hold one tensor; :func:`load_tensor_file` accepts a file only when its
  pickle names no global beyond tensor rebuilding.

Importing this module registers :func:`safe_checkpoint_globals` with
``torch.serialization.add_safe_globals``, so that a plain
``torch.load(weights_only=True)``, and mmengine's loader with it, read the
toolbox's checkpoints too; mmengine's own loaders are left as they are.
"""
import io
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# Share of the model's values a checkpoint must provide (see
# ``load_model_weights``).
MIN_LOADED_FRACTION = 0.5


def _numpy_reconstructors() -> List[Callable]:
    """numpy's functions that rebuild arrays and scalars from a pickle."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return [_reconstruct, scalar]


def history_buffer_method(owner: Any, name: Any) -> Callable:
    """What a checkpoint's ``getattr`` resolves to: the statistics methods
    of :class:`HistoryBuffer` and nothing else.

    A pickled history buffer holds its statistics methods (``min``,
    ``max``, ``current``, ``mean`` and any registered one), which pickle
    stores as ``getattr(HistoryBuffer, name)``. This function stands in for
    ``builtins.getattr`` in weights-only loads, so those load while
    ``getattr`` of anything else (a module, a builtin, ``__self__``) is
    refused.

    Args:
        owner (Any): Must be ``HistoryBuffer``.
        name (Any): A statistics method name.

    Returns:
        Callable: The method.

    Raises:
        pickle.UnpicklingError: Any other attribute.
    """
    methods = {m: getattr(HistoryBuffer, m)
               for m in ('min', 'max', 'current', 'mean')}
    methods.update(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and isinstance(name, str) and name in methods:
        return methods[name]
    owner_name = getattr(owner, '__qualname__', type(owner).__qualname__)
    raise pickle.UnpicklingError(
        f'getattr({owner_name}, {name!r}) is not allowed: a checkpoint may '
        'only name the statistics methods of HistoryBuffer')


def safe_checkpoint_globals() -> List[Union[Callable, Tuple[Callable,
                                                            str]]]:
    """The classes and functions a checkpoint may use besides tensors.

    Exactly what mmengine's checkpoints need beyond torch's defaults:
    message-hub :class:`HistoryBuffer` and its statistics methods (through
    :func:`history_buffer_method`, under the name ``builtins.getattr``),
    numpy's ``ndarray`` and ``dtype`` with its array and scalar
    reconstructors, and the dtype classes of ``numpy.dtypes`` (numpy >=
    1.25), since a dtype's pickled state is set on an instance of its class
    (e.g. ``Float64DType``).

    Returns:
        list[Callable | tuple[Callable, str]]: For
        ``torch.serialization.add_safe_globals``.
    """
    dtypes = getattr(np, 'dtypes', None)
    dtype_classes = [
        getattr(dtypes, name) for name in sorted(dir(dtypes))
        if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
    ]
    return [HistoryBuffer, (history_buffer_method, 'builtins.getattr'),
            np.ndarray, np.dtype] + _numpy_reconstructors() + dtype_classes


def register_safe_globals() -> None:
    """Allow :func:`safe_checkpoint_globals` in weights-only loads."""
    torch.serialization.add_safe_globals(safe_checkpoint_globals())


register_safe_globals()


def _unsafe_globals(filename: str) -> List[str]:
    """The globals a file names beyond the allowed ones, when torch can
    tell."""
    try:
        return sorted(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: BLE001 - unreadable or legacy files
        return []


def _weights_only_load(filename: str, map_location: Union[str, Callable,
                                                          None],
                       what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file."""
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{what} {filename} does not exist')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        offenders = _unsafe_globals(filename)
        found = f' ({", ".join(offenders)})' if offenders else ''
        # torch wraps the unpickler's reason in advice; keep the reason.
        text = str(error)
        if 'WeightsUnpickler error:' in text:
            text = text.split('WeightsUnpickler error:')[-1].split(
                'Check the documentation')[0]
        else:
            text = (text.strip().splitlines() or [''])[-1]
        reason = ' '.join(text.split())
        raise pickle.UnpicklingError(
            f'Refused to load {filename}: it holds objects other than '
            f'tensors and plain data{found}, and unpickling them could run '
            'code from the file. Checkpoints of SAM and of this toolbox '
            'load without that; if you trust this file, convert it to a '
            f'plain state dict first. {reason}') from error
    except (RuntimeError, EOFError, OSError, ValueError,
            zipfile.BadZipFile) as error:
        raise RuntimeError(
            f'Cannot read {what} {filename}: it is truncated, corrupt or '
            f'not a file written by torch.save ({error})') from error


def load_checkpoint_file(filename: str,
                         map_location: Union[str, Callable,
                                             None] = None) -> Any:
    """Load a checkpoint file weights-only under the toolbox's allowlist.

    Args:
        filename (str): Path of the file.
        map_location (str | Callable, optional): As for ``torch.load``.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: The file does not exist.
        pickle.UnpicklingError: The file holds objects beyond tensors and
            the allowlist; the message names the file and them.
        RuntimeError: The file is truncated or not a checkpoint.
    """
    register_safe_globals()  # in case a caller cleared torch's allowlist
    return _weights_only_load(filename, map_location, 'checkpoint')


# The only globals ``torch.save(tensor)`` writes: the rebuild function, the
# storage class of the tensor's dtype and the (empty) hook dict.
_TENSOR_FILE_GLOBALS = re.compile(
    r'^(torch\._utils\._rebuild_tensor_v2|collections\.OrderedDict|'
    r'torch\.[A-Za-z0-9]+Storage)$')


def _pickle_globals(filename: str) -> Optional[List[str]]:
    """The globals named in the pickle of a ``torch.save`` zip file, or None
    when the file is not one."""
    try:
        with zipfile.ZipFile(filename) as archive:
            names = [n for n in archive.namelist() if n.endswith('/data.pkl')]
            if len(names) != 1:
                return None
            data = archive.read(names[0])
        found = []
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name == 'GLOBAL':
                found.append(arg.replace(' ', '.'))
            elif opcode.name == 'STACK_GLOBAL':
                found.append('<a global built on the stack>')
        return found
    except (OSError, ValueError, EOFError, zipfile.BadZipFile,
            pickle.UnpicklingError):
        return None


def load_tensor_file(filename: str,
                     map_location: Union[str, Callable, None] = None
                     ) -> torch.Tensor:
    """Load a file that holds exactly one tensor (``torch.save(tensor)``).

    Its pickle may name no global besides tensor rebuilding; it is then
    loaded weights-only.

    Args:
        filename (str): Path of the file.
        map_location (str | Callable, optional): As for ``torch.load``.

    Returns:
        torch.Tensor: The tensor.

    Raises:
        FileNotFoundError: The file does not exist.
        pickle.UnpicklingError: It names other globals.
        RuntimeError: It is truncated, corrupt or holds no single tensor.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'tensor file {filename} does not exist')
    names = _pickle_globals(filename)
    if names is None:
        raise RuntimeError(f'Cannot read tensor file {filename}: it is '
                           'truncated, corrupt or not a file written by '
                           'torch.save')
    offenders = sorted({n for n in names if not _TENSOR_FILE_GLOBALS.match(n)})
    if offenders:
        raise pickle.UnpicklingError(
            f'Refused to load {filename}: a tensor file may hold one tensor '
            f'only, but it names {", ".join(offenders)}, and unpickling '
            'those could run code from the file')
    tensor = _weights_only_load(filename, map_location, 'tensor file')
    if type(tensor) is not torch.Tensor:
        raise RuntimeError(f'{filename} holds a {type(tensor).__name__}, '
                           'not a tensor')
    return tensor


def resolve_checkpoint(filename: str) -> str:
    """The local file of a checkpoint path or ``http(s)://`` URL.

    A URL is downloaded once into torch's hub cache (``TORCH_HOME``).

    Args:
        filename (str): A local path or an ``http(s)://`` URL.

    Returns:
        str: The local path.
    """
    filename = str(filename)
    if not filename.startswith(('http://', 'https://')):
        if re.match(r'^[a-z][a-z0-9+.-]*://', filename):
            raise ValueError(f'Cannot load {filename}: give a local file '
                             'or an http(s):// URL')
        return filename
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, osp.basename(filename.split('?')[0]))
    if not osp.isfile(path):
        torch.hub.download_url_to_file(filename, path)
    return path


def checkpoint_key_report(model: torch.nn.Module,
                          state_dict: Mapping[str, Any]) -> Dict[str, list]:
    """Compare a model's state-dict keys with a checkpoint's.

    Args:
        model (nn.Module): The model.
        state_dict (Mapping): The checkpoint's state dict (``module.``
            prefixes of wrapped models are ignored).

    Returns:
        dict[str, list]: Sorted keys that are ``new`` (in the model, not in
        the checkpoint), ``unexpected`` (the other way round) and
        ``mismatched`` (in both with different shapes).
    """
    ours = model.state_dict()
    theirs = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    return dict(
        new=sorted(set(ours) - set(theirs)),
        unexpected=sorted(set(theirs) - set(ours)),
        mismatched=sorted(
            k for k in set(ours) & set(theirs)
            if not hasattr(theirs[k], 'shape') or
            tuple(theirs[k].shape) != tuple(ours[k].shape)))


def format_key_report(report: Dict[str, list]) -> str:
    """One readable line per kind of difference, keys grouped by module.

    Args:
        report (dict[str, list]): From :func:`checkpoint_key_report`.

    Returns:
        str: E.g. ``'new (kept at their initialisation): global_refiner (48
        tensors), patch_refiner (30 tensors)'``; ``'all keys match'``.
    """
    titles = dict(
        new='new (kept at their initialisation)',
        unexpected='unexpected (not used)',
        mismatched='shape mismatch (not loaded)')
    lines = []
    for kind, keys in report.items():
        if not keys:
            continue
        groups: Dict[str, int] = {}
        for key in keys:
            prefix = key.split('.')[0]
            groups[prefix] = groups.get(prefix, 0) + 1
        lines.append(f'{titles[kind]}: ' + ', '.join(
            f'{name} ({count} tensors)' for name, count in groups.items()))
    return '; '.join(lines) or 'all keys match'


def loaded_fraction(model: torch.nn.Module, report: Dict[str, list]) -> float:
    """Share of the model's values (parameter and buffer elements) that a
    checkpoint provides.

    Args:
        model (nn.Module): The model.
        report (dict[str, list]): From :func:`checkpoint_key_report`.

    Returns:
        float: Between 0 and 1.
    """
    sizes = {k: v.numel() for k, v in model.state_dict().items()}
    missing = set(report['new']) | set(report['mismatched'])
    total = sum(sizes.values())
    return 1.0 - sum(sizes[k] for k in missing) / max(total, 1)


def load_model_weights(model: torch.nn.Module,
                       checkpoint: dict,
                       strict: bool = False,
                       revise_keys: Sequence[Tuple[str, str]] = (
                           (r'^module\.', ''), ),
                       source: str = 'the checkpoint') -> Dict[str, list]:
    """Load a checkpoint's weights into a model and say what differed.

    Tensors of another shape are left out rather than failing the whole
    load, as long as the checkpoint provides most of the model: when less
    than :data:`MIN_LOADED_FRACTION` of the model's values would load (a
    checkpoint of another architecture or size), it is an error rather than
    a run with random weights.

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (dict): A loaded checkpoint (a state dict, or a dict with
            ``state_dict``), e.g. from :func:`load_checkpoint_file`.
        strict (bool): Raise when any key is new, unexpected or of another
            shape. Defaults to False.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)``
            rewrites of the checkpoint's keys.
        source (str): Name of the checkpoint in messages.

    Returns:
        dict[str, list]: The report of :func:`checkpoint_key_report`.

    Raises:
        RuntimeError: The checkpoint holds no state dict, does not fit the
            model, or (``strict``) differs from it.
    """
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'{source} holds no state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise RuntimeError(f'{source} holds no state dict')
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    report = checkpoint_key_report(model, state_dict)
    if strict and any(report.values()):
        raise RuntimeError(f'{source} does not match the model: '
                           f'{format_key_report(report)}')
    fraction = loaded_fraction(model, report)
    if fraction < MIN_LOADED_FRACTION:
        raise RuntimeError(
            f'{source} does not fit {type(model).__name__}: only '
            f'{fraction:.0%} of its weights would load '
            f'({format_key_report(report)}). It is a checkpoint of another '
            'model or size; pick the config that matches it.')
    mismatched = set(report['mismatched'])
    model.load_state_dict(
        {k: v
         for k, v in state_dict.items() if k not in mismatched},
        strict=False)
    return report
