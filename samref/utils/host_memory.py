# Copyright (c) samref contributors. All rights reserved.
import ctypes
import sys
import warnings
from typing import Optional

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses a larger mmap threshold on 64-bit systems.
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024


def check_bytes(name: str, value: int, low: int, high: int) -> None:
    """Refuse ``value`` unless it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not low <= value <= high:
        raise ValueError(f'{name} must be an integer from {low} to {high} '
                         f'bytes, got {value!r}')


def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Let glibc's ``malloc`` keep freed host buffers for reuse.

    By default glibc maps every allocation above an adaptive threshold
    (128 KiB at first, at most 32 MiB) on its own and unmaps it when freed,
    and it returns the free top of its heap to the system once that passes
    twice the threshold. A CPU training step allocates and frees hundreds
    of megabytes of activations of many sizes, so every step gets fresh
    pages, each zeroed by the kernel at its first touch: 60 steps of the
    demo's stage 1 took 300k to 760k page faults, and 75k to 85k with fixed
    thresholds, which made its steps 6 to 9 % faster
    (``docs/en/notes/speed.md``). What is computed does not change, and
    the peak resident memory stayed the same.

    The settings hold for the whole process and its forked children (the
    data workers). Elsewhere than on Linux with glibc nothing is set.

    Args:
        mmap_threshold (int): Bytes from which an allocation is mapped on
            its own, 1 to 32 MiB.
        trim_threshold (int): Free bytes at the top of the heap that are
            kept rather than returned to the system, at least 0.

    Returns:
        bool: Whether the thresholds were set: the C library is glibc and
        accepted them (a refusal is warned about).
    """
    check_bytes('mmap_threshold', mmap_threshold, 1, MAX_MMAP_THRESHOLD)
    check_bytes('trim_threshold', trim_threshold, 0, 2**31 - 1)
    if not sys.platform.startswith('linux'):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, 'gnu_get_libc_version'):
        return False  # musl and other C libraries
    settings = {
        M_MMAP_THRESHOLD: mmap_threshold,
        M_TRIM_THRESHOLD: trim_threshold
    }
    for param, value in settings.items():
        if libc.mallopt(param, value) != 1:
            # Only a performance setting: the process goes on without it.
            warnings.warn(f'mallopt({param}, {value}) failed; glibc keeps '
                          'its own malloc thresholds')
            return False
    return True


def apply_malloc_cfg(env_cfg: Optional[dict]) -> bool:
    """Set the thresholds of a config's ``env_cfg.malloc_cfg``
    (:func:`set_malloc_thresholds`), as the runner does before training or
    testing.

    Args:
        env_cfg (dict, optional): A config's ``env_cfg``; nothing is set
            without a ``malloc_cfg`` in it.

    Returns:
        bool: Whether the thresholds were set.
    """
    malloc_cfg = (env_cfg or {}).get('malloc_cfg')
    if malloc_cfg is None:
        return False
    try:
        return set_malloc_thresholds(**malloc_cfg)
    except (TypeError, ValueError) as err:
        raise ValueError(f'env_cfg.malloc_cfg={malloc_cfg!r}: {err}') from None
