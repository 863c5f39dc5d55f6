# Copyright (c) samref contributors. All rights reserved.
import pytest
import torch
from mmengine.config import Config

from samref.models import BaseInteractiveSegmentor
from testing_utils import CONFIG_DIR, build_from_config

ALL_CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))
EXPERIMENT_CONFIGS = [p for p in ALL_CONFIGS if '_base_' not in p.parts]


def test_configs_are_found():
    assert len(EXPERIMENT_CONFIGS) >= 4


@pytest.mark.parametrize(
    'path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_parses(path):
    cfg = Config.fromfile(str(path))
    assert cfg.filename == str(path)


@pytest.mark.parametrize(
    'path', EXPERIMENT_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_experiment_config_builds_an_interactive_segmentor(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['samref'], allow_failed_imports=False)
    with torch.device('meta'):  # no memory for ViT-H
        model = build_from_config(str(path.relative_to(CONFIG_DIR)))
    assert isinstance(model, BaseInteractiveSegmentor)
    assert model.input_size == cfg.model.data_preprocessor.size[0]
