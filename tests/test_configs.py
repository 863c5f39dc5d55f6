# Copyright (c) samref contributors. All rights reserved.
import re

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, HOOKS, LOOPS,
                            METRICS, MODELS, PARAM_SCHEDULERS, TASK_UTILS,
                            TRANSFORMS, WEIGHT_INITIALIZERS)

from samref.models import BaseInteractiveSegmentor
from testing_utils import CONFIG_DIR, REPO_ROOT, build_from_config

ALL_CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))
EXPERIMENT_CONFIGS = [p for p in ALL_CONFIGS if '_base_' not in p.parts]
# mmseg's naming: {algorithm}_{backbone}[_{N}xb{B}-{schedule}][_{data}...]
# (the demo's configs are named after the demo's stages instead).
ZOO_NAME = re.compile(r'(?P<algorithm>(sam|samref|focsam)(-[a-z0-9-]+)?)'
                      r'_vit-(tiny|b|l|h)'
                      r'(_(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<iters>\d+)k)?'
                      r'(_[a-z0-9-]+)*\.py')

# Short names kept for the commands users have: each only inherits the
# config of the same model named in mmseg's scheme.
ALIASES = {
    f'samref/vit_{size}_coco_lvis.py':
    f'samref/samref_vit-{size}_4xb4-80k_coco-lvis.py'
    for size in 'blh'
}


def config_id(path) -> str:
    return str(path.relative_to(CONFIG_DIR))


def metafile_configs() -> set:
    """The configs the model index lists, through its metafiles."""
    index = yaml.safe_load((REPO_ROOT / 'model-index.yml').read_text())
    configs = set()
    for metafile in index['Import']:
        models = yaml.safe_load((REPO_ROOT / metafile).read_text())['Models']
        configs |= {REPO_ROOT / model['Config'] for model in models}
    return configs


def test_configs_are_found():
    folders = {
        p.parent.relative_to(CONFIG_DIR).as_posix()
        for p in EXPERIMENT_CONFIGS
    }
    assert folders == {'demo', 'focsam', 'sam', 'samref', 'samref/ablations'}
    indexed = metafile_configs()
    # SAM's five rows and SAM-REF's four models and seven ablations.
    assert len(indexed) == 16
    assert indexed <= set(EXPERIMENT_CONFIGS)


@pytest.mark.parametrize('alias', sorted(ALIASES))
def test_short_config_names_are_the_zoo_configs(alias):
    path = CONFIG_DIR / alias
    body = [
        line for line in path.read_text().splitlines()
        if line and not line.startswith('#')
    ]
    target = ALIASES[alias]
    assert body == [f"_base_ = ['./{target.split('/')[-1]}']"], alias
    assert Config.fromfile(str(path)).to_dict() == Config.fromfile(
        str(CONFIG_DIR / target)).to_dict()


@pytest.mark.parametrize(
    'path', [
        p for p in EXPERIMENT_CONFIGS
        if p.parent.name != 'demo' and config_id(p) not in ALIASES
    ],
    ids=config_id)
def test_model_zoo_config_names_follow_mmseg(path):
    match = ZOO_NAME.fullmatch(path.name)
    assert match, path.name
    assert match['algorithm'].split('-')[0] == path.parent.parts[-1] or (
        path.parent.name == 'ablations')
    cfg = Config.fromfile(str(path))
    if match['iters'] is None:  # a model, an evaluation or a demo config
        assert 'train_dataloader' not in cfg or path.stem.endswith('_shapes')
    else:  # the name says the schedule and the batch per GPU
        assert cfg.train_cfg.max_iters == int(match['iters']) * 1000
        assert cfg.train_dataloader.batch_size == int(match['batch'])


def model_types(cfg) -> list:
    """The ``type`` of every dict nested in ``cfg`` (a model's parts: the
    segmentor, its modules, losses, norms, click sampler, initialisers)."""
    if isinstance(cfg, dict):
        found = [cfg['type']] if isinstance(cfg.get('type'), str) else []
        return found + [
            t for value in cfg.values() for t in model_types(value)
        ]
    if isinstance(cfg, (list, tuple)):
        return [t for value in cfg for t in model_types(value)]
    return []


def check_types(cfg: dict, registry, key: str) -> None:
    """Every ``type`` of ``cfg`` (nested ``key`` lists included) is in
    ``registry``."""
    name = cfg['type']
    if isinstance(name, str):
        assert registry.get(name) is not None, (registry.name, name)
    for child in cfg.get(key) or []:
        check_types(child, registry, key)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=config_id)
def test_config_parses(path):
    """Each config's data, loops, evaluators, schedules and hooks name
    registered components (the models are built below), and each base file
    holds what its folder is for."""
    cfg = Config.fromfile(str(path))
    init_default_scope('mmseg')
    folder = path.parent.name
    if '_base_' not in path.parts or folder == 'models':
        # models/sam_tiny_p8_256.py holds settings of parts other configs
        # define.
        types = model_types(cfg.get('model') or cfg.to_dict())
        assert 'model' not in cfg or 'SegDataPreProcessor' in types
        registries = (MODELS, TASK_UTILS, WEIGHT_INITIALIZERS)
        for name in types:
            assert any(registry.get(name) for registry in registries), name
    if 'train_cfg' in cfg:
        assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_iters
        for scheduler in cfg.param_scheduler:
            check_types(scheduler, PARAM_SCHEDULERS, 'schedulers')
    if folder == 'schedules':
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    if folder == 'datasets':
        assert any(f'{split}_dataloader' in cfg
                   for split in ('train', 'val', 'test'))
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        check_types(loader.sampler, DATA_SAMPLERS, 'samplers')
        if 'type' in loader.dataset:
            check_types(loader.dataset, DATASETS, 'datasets')
        for transform in loader.dataset.get('pipeline', []):
            check_types(transform, TRANSFORMS, 'transforms')
    for key, registry in (('val_cfg', LOOPS), ('test_cfg', LOOPS),
                          ('val_evaluator', METRICS), ('test_evaluator',
                                                       METRICS)):
        if cfg.get(key) and 'type' in cfg[key]:
            assert (registry.get(cfg[key].type)
                    or EVALUATOR.get(cfg[key].type)), (key, cfg[key].type)
    for hook in list(cfg.get('default_hooks', {}).values()) + list(
            cfg.get('custom_hooks', [])):
        if hook:
            check_types(hook, HOOKS, 'hooks')
    if path.name == 'default_runtime.py':
        assert cfg.default_scope == 'mmseg'
        assert cfg.custom_imports.imports == ['samref']


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
