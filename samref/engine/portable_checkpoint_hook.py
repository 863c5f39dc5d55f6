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
    if isinstance(value, dict) and set(value) == BUFFER_FIELDS:
        return HistoryBuffer(value['log_history'].numpy(),
                             value['count_history'].numpy(),
                             value['max_length'])
    return value


def log_scalars(checkpoint: dict) -> dict:
    """The message hub's logged scalars in a checkpoint (``{}`` if none)."""
    hub = checkpoint.get('message_hub')
    scalars = hub.get('log_scalars') if isinstance(hub, dict) else None
    return scalars if isinstance(scalars, dict) else {}


@HOOKS.register_module()
class PortableCheckpointHook(Hook):
    """Write checkpoints that any weights-only ``torch.load`` reads.

    mmengine's checkpoints hold the message hub's ``HistoryBuffer`` objects
    (logged losses, kept for resuming), which ``torch.load`` refuses under
    ``weights_only=True`` (its default since torch 2.6) unless the reader
    has allowed them, so tools that do not import samref (mmseg's
    ``tools/misc/publish_model.py``, a plain script) cannot read them.
    This hook stores each buffer as plain tensors (and numpy scalars of the
    runtime information as Python numbers) before a checkpoint is saved and
    rebuilds the buffers when the runner loads it, so resuming is
    unchanged. :class:`SafeLoadRunner` adds it when the config has none.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Turn the history buffers of ``checkpoint`` into plain data.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be saved (its
                ``message_hub`` state is a copy).
        """
        scalars = log_scalars(checkpoint)
        for key, value in scalars.items():
            if isinstance(value, HistoryBuffer):
                scalars[key] = buffer_to_plain(value)
        hub = checkpoint.get('message_hub')
        info = hub.get('runtime_info') if isinstance(hub, dict) else None
        for key, value in (info or {}).items():
            if isinstance(value, np.generic):  # e.g. the logger's ``eta``
                info[key] = value.item()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rebuild the history buffers of a loaded checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        scalars = log_scalars(checkpoint)
        for key, value in scalars.items():
            scalars[key] = plain_to_buffer(value)
