# Copyright (c) samref contributors. All rights reserved.
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import samref  # noqa: F401 - registers the components

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / 'configs'
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'slow: minutes of CPU time or GBs of memory; '
        'deselected by `make test`, run with `-m slow`')


def build_from_config(name: str, **overrides):
    """Build the model of ``configs/<name>`` with ``overrides`` merged."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    cfg.merge_from_dict(overrides)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(cfg.model)


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
