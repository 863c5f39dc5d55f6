# Copyright (c) samref contributors. All rights reserved.
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import torch


def synchronize(device: Optional[torch.device] = None) -> None:
    """Wait for queued GPU work so that wall-clock timings are honest.

    Args:
        device (torch.device, optional): The device in use; nothing to wait
            for on the CPU.
    """
    if device is not None and device.type == 'cuda':
        torch.cuda.synchronize(device)


@contextmanager
def timed(record: Dict[str, float],
          name: str,
          device: Optional[torch.device] = None,
          enabled: bool = True) -> Iterator[None]:
    """Add the wall time of the block to ``record[name]``.

    Args:
        record (dict[str, float]): Seconds per name, updated in place.
        name (str): The key to add to.
        device (torch.device, optional): Synchronised before and after the
            block when it is a GPU.
        enabled (bool): Time the block. When False the block runs without
            a synchronisation and nothing is recorded (a GPU keeps its
            queue full where nobody reads the time). Defaults to True.
    """
    if not enabled:
        yield
        return
    synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        record[name] = record.get(name, 0.0) + time.perf_counter() - start
