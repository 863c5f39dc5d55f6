# Copyright (c) samref contributors. All rights reserved.
import ctypes
import sys
import warnings
from typing import Optional

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# mallopt takes an int. Older glibc releases refuse an mmap threshold above
# half their 64 MiB heap size on 64-bit systems; newer ones (2.36) take any.
MAX_MMAP_THRESHOLD = 2**31 - 1
OLD_GLIBC_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024
# A trim threshold of -1 never returns the free heap (mallopt(3)).
NEVER_TRIM = -1


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
    of megabytes of activations of many sizes, and a ViT encoder's global
    attention at 1024 x 1024 allocates ``heads x 4096 x 4096`` floats (805
    MB for ViT-B) in each of its global blocks, so every step and every
    image gets fresh pages, each zeroed by the kernel at its first touch.
    Kept for reuse, ViT-B's encoder ran 1.4 to 1.6 times faster on 2 CPU
    cores and the demo's stage-1 steps 6 to 9 % faster
    (``docs/en/notes/speed.md``). What is computed does not change. The
    process keeps its peak heap instead of returning it while idle, and
    freed buffers can leave holes that a larger one does not fit: the peak
    resident memory of training and of one encoding stayed the same, that
    of a ViT-B benchmark of encodings and clicks rose by a quarter.

    The settings hold for the whole process and its forked children (the
    data workers). Elsewhere than on Linux with glibc nothing is set. Older
    glibc releases refuse an ``mmap_threshold`` above 32 MiB: it is then
    set to 32 MiB, with a warning.

    Args:
        mmap_threshold (int): Bytes from which an allocation is mapped on
            its own (and unmapped when freed), 1 to ``2**31 - 1``.
        trim_threshold (int): Free bytes at the top of the heap that are
            kept rather than returned to the system, 0 to ``2**31 - 1``, or
            -1 to keep all of them.

    Returns:
        bool: Whether the thresholds were set: the C library is glibc and
        accepted them (a refusal is warned about).
    """
    check_bytes('mmap_threshold', mmap_threshold, 1, MAX_MMAP_THRESHOLD)
    check_bytes('trim_threshold', trim_threshold, NEVER_TRIM, 2**31 - 1)
    if not sys.platform.startswith('linux'):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, 'gnu_get_libc_version'):
        return False  # musl and other C libraries
    if libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1:
        if mmap_threshold <= OLD_GLIBC_MAX_MMAP_THRESHOLD or libc.mallopt(
                M_MMAP_THRESHOLD, OLD_GLIBC_MAX_MMAP_THRESHOLD) != 1:
            # Only a performance setting: the process goes on without it.
            warnings.warn(f'mallopt(M_MMAP_THRESHOLD, {mmap_threshold}) '
                          'failed; glibc keeps its own malloc thresholds')
            return False
        warnings.warn(f'glibc refused mmap_threshold={mmap_threshold}; '
                      f'set {OLD_GLIBC_MAX_MMAP_THRESHOLD}, its largest')
    if libc.mallopt(M_TRIM_THRESHOLD, trim_threshold) != 1:
        warnings.warn(f'mallopt(M_TRIM_THRESHOLD, {trim_threshold}) failed; '
                      'glibc keeps its own trim threshold')
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
