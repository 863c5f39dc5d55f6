# Copyright (c) samref contributors. All rights reserved.
"""Paths and builders shared by the tests."""
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import samref  # noqa: F401 - registers the components

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / 'configs'
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


def build_from_config(name: str, **overrides):
    """Build the model of ``configs/<name>`` with ``overrides`` merged."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    cfg.merge_from_dict(overrides)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(cfg.model)


# Config overrides that turn off validation while training, for runs that
# check training itself on data without a val set.
NO_VALIDATION = {
    'val_cfg': None,
    'val_dataloader': None,
    'val_evaluator': None
}
NO_VALIDATION_OPTIONS = [f'{key}=None' for key in NO_VALIDATION]


def load_script(path: str) -> ModuleType:
    """Import a command-line script of the repository (``tools/...``,
    ``demo/...``) as a module, to call its ``main(argv)`` in-process.

    Args:
        path (str): The script, relative to the repository root.

    Returns:
        ModuleType: The script's module (its ``__name__`` is not
        ``'__main__'``, so nothing runs on import).
    """
    file = REPO_ROOT / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def usable_cpus(cgroup: str = '/sys/fs/cgroup') -> int:
    """The CPUs the tests can keep busy: this process's CPU affinity, capped
    by the CPU quota of its cgroup (a container's ``--cpus``), at least 1.

    Args:
        cgroup (str): Where the cgroup file system is mounted: version 2's
            ``cpu.max`` (``"max 100000"`` or ``"<quota> <period>"``) or
            version 1's ``cpu/cpu.cfs_quota_us`` (-1 for none) and
            ``cpu/cpu.cfs_period_us``. Missing or unreadable files mean no
            quota.

    Returns:
        int: The number of CPUs.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else os.cpu_count() or 1
    root = Path(cgroup)
    try:
        if (root / 'cpu.max').is_file():
            quota, period = (root / 'cpu.max').read_text().split()
        else:
            quota = (root / 'cpu' / 'cpu.cfs_quota_us').read_text().strip()
            period = (root / 'cpu' / 'cpu.cfs_period_us').read_text().strip()
        if quota not in ('max', '-1'):
            count = min(count, int(quota) // int(period))
    except (OSError, ValueError):
        pass  # no cgroup CPU controller here, or one we cannot read
    return max(count, 1)


def auto_workers() -> Optional[int]:
    """pytest-xdist's ``-n auto``: :func:`usable_cpus`, or None (pytest-xdist
    then reads it) where ``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets the count."""
    if os.environ.get('PYTEST_XDIST_AUTO_NUM_WORKERS'):
        return None
    return usable_cpus()
