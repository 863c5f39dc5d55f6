# Copyright (c) samref contributors. All rights reserved.
import ctypes
import subprocess
import sys

import pytest

from samref.utils import set_malloc_thresholds
from samref.utils.host_memory import (MAX_MMAP_THRESHOLD,
                                      OLD_GLIBC_MAX_MMAP_THRESHOLD)
from testing_utils import CONFIG_DIR

GLIBC = sys.platform.startswith('linux') and hasattr(
    ctypes.CDLL(None), 'gnu_get_libc_version')

# Rounds of allocating SIZE MiB in tensors of PART MiB, writing them and
# freeing them all, as a training step does with its activations and an
# encoder with its attention maps; prints the page faults of the last four
# of eight rounds (the heap may take two or three rounds to settle). MODE:
# 'configs' (default_runtime.py's thresholds), 'old' (32 MiB and 256 MiB,
# the configs' before) or 'initial' (glibc's starting 128 KiB and 256 KiB,
# held fixed: glibc's own adapt, and whether they end up mapping these
# buffers varies from run to run).
ROUNDS = """
import resource, sys
import torch
from mmengine.config import Config
from samref.utils import apply_malloc_cfg, set_malloc_thresholds
mode, size, part, runtime = sys.argv[1:]
size, part = int(size), int(part)
if mode == 'configs':
    cfg = Config.fromfile(runtime)
    assert apply_malloc_cfg(cfg.env_cfg)
elif mode == 'old':
    assert set_malloc_thresholds(32 * 1024**2, 256 * 1024**2)
elif mode == 'initial':
    assert set_malloc_thresholds(128 * 1024, 256 * 1024)
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers = [torch.ones(part * 1024**2, dtype=torch.uint8)
               for _ in range(size // part)]
    del buffers
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[4:]))
"""


def later_round_faults(mode: str, size: int, part: int) -> int:
    runtime = str(CONFIG_DIR / '_base_' / 'default_runtime.py')
    args = [mode, str(size), str(part), runtime]
    out = subprocess.run([sys.executable, '-c', ROUNDS, *args],
                         capture_output=True,
                         text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.skipif(not GLIBC, reason='glibc only')
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    # 96 MiB is 24576 pages. With glibc's starting thresholds each buffer
    # is mapped on its own and unmapped when freed, and each round faults
    # all of them in again; with the configs' thresholds the later rounds
    # reuse the first rounds' pages (none faulted here).
    assert later_round_faults('initial', 96, 6) > 4 * 4000
    assert later_round_faults('configs', 96, 6) < 4 * 400


@pytest.mark.skipif(not GLIBC, reason='glibc only')
def test_buffers_the_size_of_global_attention_are_reused():
    # Two 96 MiB buffers a round, as ViT-B's global attention allocates
    # (805 MB at 1024 x 1024): above 32 MiB, the largest mmap threshold of
    # older glibc releases and the configs' before, each is mapped on its
    # own and faulted in afresh every round (49152 pages).
    assert later_round_faults('old', 192, 96) > 4 * 40000
    assert later_round_faults('configs', 192, 96) < 4 * 400


@pytest.mark.parametrize('kwargs, name', [
    (dict(mmap_threshold=MAX_MMAP_THRESHOLD + 1,
          trim_threshold=0), 'mmap_threshold'),
    (dict(mmap_threshold=0, trim_threshold=0), 'mmap_threshold'),
    (dict(mmap_threshold=1024, trim_threshold=-2), 'trim_threshold'),
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


def test_an_old_glibc_gets_its_largest_mmap_threshold(monkeypatch):
    calls = []

    class OldLibc:
        gnu_get_libc_version = None

        @staticmethod
        def mallopt(param, value):
            calls.append((param, value))
            return int(value <= OLD_GLIBC_MAX_MMAP_THRESHOLD or param == -1)

    monkeypatch.setattr(sys, 'platform', 'linux')
    monkeypatch.setattr(ctypes, 'CDLL', lambda name: OldLibc())
    with pytest.warns(UserWarning, match='refused mmap_threshold'):
        assert set_malloc_thresholds(2**31 - 1, -1)
    assert calls == [(-3, 2**31 - 1), (-3, OLD_GLIBC_MAX_MMAP_THRESHOLD),
                     (-1, -1)]
