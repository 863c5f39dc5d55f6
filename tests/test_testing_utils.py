# Copyright (c) samref contributors. All rights reserved.
import os

import pytest

import testing_utils
from testing_utils import usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    'files, expected',
    [
        ({}, AFFINITY),  # no cgroup CPU controller
        ({
            'cpu.max': 'max 100000\n'
        }, AFFINITY),
        ({
            'cpu.max': '100000 100000\n'
        }, 1),
        ({
            'cpu.max': '50000 100000\n'
        }, 1),  # half a CPU: still one worker
        ({
            'cpu.max': 'garbage\n'
        }, AFFINITY),
        ({
            'cpu/cpu.cfs_quota_us': '-1\n',
            'cpu/cpu.cfs_period_us': '100000\n'
        }, AFFINITY),
        ({
            'cpu/cpu.cfs_quota_us': '100000\n',
            'cpu/cpu.cfs_period_us': '100000\n'
        }, 1),
    ])
def test_usable_cpus_follow_the_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(str(tmp_path)) == expected


def test_a_quota_above_the_affinity_keeps_the_affinity(tmp_path):
    (tmp_path / 'cpu.max').write_text(f'{(AFFINITY + 3) * 100000} 100000\n')
    assert usable_cpus(str(tmp_path)) == AFFINITY


def test_auto_workers_follow_usable_cpus_unless_the_user_sets_them(
        monkeypatch):
    monkeypatch.setattr(testing_utils, 'usable_cpus', lambda: 3)
    monkeypatch.delenv('PYTEST_XDIST_AUTO_NUM_WORKERS', raising=False)
    assert testing_utils.auto_workers() == 3
    # pytest-xdist reads the variable itself when the hook answers None.
    monkeypatch.setenv('PYTEST_XDIST_AUTO_NUM_WORKERS', '5')
    assert testing_utils.auto_workers() is None
