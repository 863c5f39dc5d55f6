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


@pytest.mark.parametrize('name, iters', [
    ('sam/sam_vit-h_4xb4-320k_coco-lvis.py', 320000),
    ('focsam/focsam_vit-h_4xb4-160k_coco-lvis.py', 160000),
    ('samref/samref_vit-h_4xb4-80k_coco-lvis.py', 80000),
])
def test_schedules_warm_up_from_1e_6_as_focsam(name, iters):
    # FocSAM's optimizer_adamw_{80k,160k,320k}.py: LinearLR from 1e-6 x lr
    # over 1500 iterations, then PolyLR to the end; SAM-REF trains in
    # FocSAM's settings.
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    warm_up, decay = cfg.param_scheduler
    assert warm_up.type == 'LinearLR'
    assert warm_up.start_factor == 1e-6
    assert (warm_up.begin, warm_up.end) == (0, 1500)
    assert decay.type == 'PolyLR' and decay.eta_min == 0
    assert (decay.begin, decay.end) == (1500, iters)
    assert cfg.train_cfg.max_iters == iters
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
