# Copyright (c) samref contributors. All rights reserved.
from typing import Any, Dict

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmseg.registry import HOOKS

# The fields of a history buffer written as plain data.
BUFFER_FIELDS = frozenset({'log_history', 'count_history', 'max_length'})


def buffer_to_plain(buffer: HistoryBuffer) -> Dict[str, Any]:
    """A history buffer as tensors and an int."""
    return dict(
        log_history=torch.from_numpy(np.asarray(buffer._log_history)),
        count_history=torch.from_numpy(np.asarray(buffer._count_history)),
        max_length=int(buffer.max_length))


def plain_to_buffer(value: Any) -> Any:
    """The history buffer :func:`buffer_to_plain` wrote, or ``value``."""
    if isinstance(value, dict) and set(value) == BUFFER_FIELDS and all(
            isinstance(value[k], torch.Tensor)
            for k in ('log_history', 'count_history')):
        return HistoryBuffer(value['log_history'].cpu().numpy(),
                             value['count_history'].cpu().numpy(),
                             value['max_length'])
    return value


def to_plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and numpy arrays as
    tensors, in any nesting of dicts, lists and tuples.

    Args:
        value (Any): E.g. a message hub's ``runtime_info``.

    Returns:
        Any: The converted value (containers are copied).
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return type(value)((k, to_plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def log_scalars(checkpoint: dict) -> dict:
    """The message hub's logged scalars in a checkpoint (``{}`` if none)."""
    hub = checkpoint.get('message_hub')
    scalars = hub.get('log_scalars') if isinstance(hub, dict) else None
    return scalars if isinstance(scalars, dict) else {}


@HOOKS.register_module()
class PortableCheckpointHook(Hook):
    """Write checkpoints that hold tensors and plain Python data only.

    mmengine's checkpoints hold the message hub's ``HistoryBuffer`` objects
    (logged losses, kept for resuming) and numpy values (in the message
    hub's runtime information, e.g. the logger's ``eta``, and in ``meta``).
    Loading those needs numpy's and mmengine's classes in the unpickler's
    allowlist, and numpy's reconstructors let a crafted file crash the
    process, so the toolbox's loader refuses them and so does a plain
    ``torch.load`` (weights-only by default since torch 2.6). This hook
    stores each buffer as plain tensors and every numpy value of ``meta``
    and ``message_hub`` as a Python number or a tensor before a checkpoint
    is saved, and rebuilds the buffers when the runner loads it, so
    resuming is unchanged and any tool (mmseg's ``publish_model``, a plain
    script) reads the file with torch's defaults.
    :class:`SafeLoadRunner` adds it when the config has none.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Turn the history buffers and numpy values of ``checkpoint`` into
        plain data.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be saved (its
                ``message_hub`` state is a copy).
        """
        scalars = log_scalars(checkpoint)
        for key, value in scalars.items():
            if isinstance(value, HistoryBuffer):
                scalars[key] = buffer_to_plain(value)
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rebuild the history buffers of a loaded checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint (its tensors on any
                device).
        """
        scalars = log_scalars(checkpoint)
        for key, value in scalars.items():
            scalars[key] = plain_to_buffer(value)
