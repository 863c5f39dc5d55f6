# Copyright (c) samref contributors. All rights reserved.
"""The toolbox's checkpoint loading policy.

Unpickling a file can run code stored in it. So every checkpoint file is
loaded with ``torch.load(weights_only=True)``: pretrained SAM weights,
``load_from``, the checkpoint given to ``tools/test.py``. Besides tensors,
that load accepts only the plain data that mmengine writes into its own
checkpoints (message-hub history buffers, numpy arrays, scalars and dtypes),
so the toolbox's checkpoints load too. Full unpickling happens only inside
:func:`trusted_checkpoints`, which the runner enters when it resumes its own
training from the work directory.

Importing this module makes mmengine's loader of local files (used by
``Runner.load_checkpoint``, ``load_checkpoint`` and ``init_cfg``
``Pretrained``) follow the policy.
"""
import builtins
import os.path as osp
import pickle
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_TRUSTED: ContextVar[bool] = ContextVar('samref_trusted_checkpoints',
                                        default=False)


def _numpy_globals() -> List[Callable]:
    """numpy callables and types needed to rebuild arrays and scalars."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType')
    ]
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtype_classes


def safe_checkpoint_globals() -> List[Callable]:
    """The globals a weights-only load may rebuild besides tensors.

    ``builtins.getattr`` is among them because numpy pickles dtypes through
    it; the weights-only unpickler still refuses to *call* anything that is
    not listed here, so it cannot be used to reach other code.

    Returns:
        list[Callable]: Classes and functions for
        ``torch.serialization.safe_globals``.
    """
    return [HistoryBuffer, builtins.getattr] + _numpy_globals()


@contextmanager
def trusted_checkpoints() -> Iterator[None]:
    """Load checkpoint files with full unpickling inside the block.

    Only for files the toolbox wrote itself, i.e. when resuming training.
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _unsafe_globals(filename: str) -> Optional[List[str]]:
    """The globals a file needs beyond the safe list, when torch can tell."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001 - legacy (non-zip) files are opaque
        return None


def load_checkpoint_file(filename: str,
                         map_location: Union[str, Callable, None] = None,
                         trusted: Optional[bool] = None) -> Any:
    """Load a checkpoint file under the toolbox's policy.

    Args:
        filename (str): Path of the file.
        map_location (str | Callable, optional): As for ``torch.load``.
        trusted (bool, optional): Fully unpickle the file. None (default)
            means trusted only inside :func:`trusted_checkpoints`.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: The file does not exist.
        pickle.UnpicklingError: A weights-only load found objects other than
            tensors and plain data; the message names the file and them.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file {filename} does not exist')
    if trusted is None:
        trusted = _TRUSTED.get()
    if trusted:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_checkpoint_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        offenders = _unsafe_globals(filename)
        found = f' ({", ".join(offenders)})' if offenders else ''
        raise pickle.UnpicklingError(
            f'Refused to load {filename}: it holds objects other than '
            f'tensors and plain data{found}, and unpickling them could run '
            'code from the file. Checkpoints from SAM and from this toolbox '
            'load without that; if you trust this file, convert it to a '
            'plain state dict first.') from error


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str,
                    map_location: Union[str, Callable, None] = None) -> Any:
    """mmengine's loader of local files, under :func:`load_checkpoint_file`.

    Args:
        filename (str): Path of the file.
        map_location (str | Callable, optional): As for ``torch.load``.

    Returns:
        Any: The loaded checkpoint.
    """
    return load_checkpoint_file(filename, map_location)


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
            if hasattr(theirs[k], 'shape') and
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


def load_model_weights(model: torch.nn.Module,
                       checkpoint: dict,
                       strict: bool = False,
                       revise_keys: Sequence[Tuple[str, str]] = (
                           (r'^module\.', ''), ),
                       source: str = 'the checkpoint') -> Dict[str, list]:
    """Load a checkpoint's weights into a model and say what differed.

    Tensors of another shape are left out rather than failing the whole
    load.

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (dict): A loaded checkpoint (a state dict, or a dict with
            ``state_dict``), e.g. from mmengine's ``_load_checkpoint``, which
            reads files under this module's policy.
        strict (bool): Raise when any key is new, unexpected or of another
            shape. Defaults to False.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)``
            rewrites of the checkpoint's keys.
        source (str): Name of the checkpoint in messages.

    Returns:
        dict[str, list]: The report of :func:`checkpoint_key_report`.
    """
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'{source} holds no state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    report = checkpoint_key_report(model, state_dict)
    if strict and any(report.values()):
        raise RuntimeError(f'{source} does not match the model: '
                           f'{format_key_report(report)}')
    mismatched = set(report['mismatched'])
    model.load_state_dict(
        {k: v
         for k, v in state_dict.items() if k not in mismatched},
        strict=False)
    return report
