# Copyright (c) samref contributors. All rights reserved.
import gc
from typing import Optional

import pytest
import torch

from testing_utils import auto_workers, build_from_config


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'slow: minutes of CPU time or GBs of memory; '
        'deselected by `make test`, run with `-m slow`')
    config.addinivalue_line(
        'markers', 'browser: drives headless Chromium (skipped without it; '
        '`make test-browser`)')
    config.addinivalue_line(
        'markers', 'cuda: needs an NVIDIA GPU (skipped without one; '
        '`make test-gpu`)')


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Optional[int]:
    # `make test` runs `-n auto`, which pytest-xdist counts from the host's
    # CPUs: in a container with a CPU quota (docker --cpus 2 on a 64-core
    # host) that would start 64 workers, each loading torch.
    return auto_workers()


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every mmengine dataset runs a full garbage collection when it is built
    # (BaseDataset._serialize_data), and the suite builds over a hundred:
    # each scanned the 350 000 objects of torch, mmseg, samref and the test
    # modules, 0.2 to 0.6 s a time on two cores. Those objects live for the
    # whole session; frozen (gc.freeze), the collector skips them, and
    # collects what the tests create as before.
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs an NVIDIA GPU (torch.cuda.'
                            'is_available() is False); `make test-gpu` '
                            'runs these on a GPU machine')
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


@pytest.fixture
def tiny_sam():
    """SAM with the tiny encoder and non-trivial random positional terms.

    SAM initialises its positional embeddings to zero; randomising them makes
    equivalence tests sensitive to position handling too.
    """
    torch.manual_seed(0)
    model = build_from_config('sam/sam_vit-tiny.py')
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'pos' in name:
                param.normal_(0, 0.1)
    return model.eval()
