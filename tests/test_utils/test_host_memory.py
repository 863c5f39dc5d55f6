# Copyright (c) samref contributors. All rights reserved.
import ctypes
import subprocess
import sys

import pytest

from samref.utils import set_malloc_thresholds
from samref.utils.host_memory import MAX_MMAP_THRESHOLD

GLIBC = sys.platform.startswith('linux') and hasattr(
    ctypes.CDLL(None), 'gnu_get_libc_version')

# Rounds of allocating 96 MiB in 6 MiB buffers, writing them and freeing
# them all, as a training step does with its activations; prints the page
# faults of the rounds after the first.
ROUNDS = """
import resource, sys
import numpy as np
from samref.utils import set_malloc_thresholds
if sys.argv[1] == 'set':
    assert set_malloc_thresholds(32 * 1024**2, 256 * 1024**2)
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers = [np.ones(6 * 1024**2, np.uint8) for _ in range(16)]
    del buffers
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def later_round_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, '-c', ROUNDS, mode],
                         capture_output=True,
                         text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.skipif(not GLIBC, reason='glibc only')
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    # 96 MiB is 24576 pages. By default glibc returns most of the freed
    # heap, and each round faults a third of it in again (8200 pages here);
    # with the thresholds set the later rounds reuse the first round's
    # pages (none faulted here).
    assert later_round_faults('default') > 4 * 4000
    assert later_round_faults('set') < 4 * 400


@pytest.mark.parametrize('kwargs, name', [
    (dict(mmap_threshold=MAX_MMAP_THRESHOLD + 1,
          trim_threshold=0), 'mmap_threshold'),
    (dict(mmap_threshold=0, trim_threshold=0), 'mmap_threshold'),
    (dict(mmap_threshold=1024, trim_threshold=-1), 'trim_threshold'),
    (dict(mmap_threshold=1024, trim_threshold=2**31), 'trim_threshold'),
    (dict(mmap_threshold=1024.0, trim_threshold=0), 'mmap_threshold'),
    (dict(mmap_threshold=True, trim_threshold=0), 'mmap_threshold'),
])
def test_bad_thresholds_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        set_malloc_thresholds(**kwargs)


def test_a_refusing_c_library_is_warned_about_not_fatal(monkeypatch):

    class RefusingLibc:
        gnu_get_libc_version = None

        @staticmethod
        def mallopt(param, value):
            return 0

    monkeypatch.setattr(sys, 'platform', 'linux')
    monkeypatch.setattr(ctypes, 'CDLL', lambda name: RefusingLibc())
    with pytest.warns(UserWarning, match='mallopt'):
        assert not set_malloc_thresholds(1024, 0)
