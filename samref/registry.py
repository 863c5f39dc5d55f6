# Copyright (c) samref contributors. All rights reserved.
"""The ``samref`` registry scope and the ``samref::`` config scope.

samref's components register into mmseg's registries (configs set
``default_scope = 'mmseg'``). A config that inherits ours from another
project, ``_base_ = ['samref::samref/vit_h_coco_lvis.py']``, gets
``_scope_='samref'`` on its components; the registries below, children of
mmseg's with the scope ``samref``, are where mmengine then looks, and they
find everything in their parents (samref's, mmseg's and mmengine's
components). ``locations`` name the sub-packages that register each kind,
mmseg's included: a parent registry's own ``locations`` are not imported
when a child looks a name up in it.
"""
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

RUNNERS = Registry(
    'runner',
    parent=mmseg_registry.RUNNERS,
    scope='samref',
    locations=['samref.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor',
    parent=mmseg_registry.RUNNER_CONSTRUCTORS,
    scope='samref',
    locations=['samref.engine'])
LOOPS = Registry(
    'loop',
    parent=mmseg_registry.LOOPS,
    scope='samref',
    locations=['samref.engine'])
HOOKS = Registry(
    'hook',
    parent=mmseg_registry.HOOKS,
    scope='samref',
    locations=['samref.engine', 'mmseg.engine.hooks'])
DATASETS = Registry(
    'dataset',
    parent=mmseg_registry.DATASETS,
    scope='samref',
    locations=['samref.datasets', 'mmseg.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=mmseg_registry.DATA_SAMPLERS,
    scope='samref',
    locations=['samref.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=mmseg_registry.TRANSFORMS,
    scope='samref',
    locations=['samref.datasets', 'mmseg.datasets.transforms'])
MODELS = Registry(
    'model',
    parent=mmseg_registry.MODELS,
    scope='samref',
    locations=['samref.models', 'mmseg.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=mmseg_registry.MODEL_WRAPPERS,
    scope='samref',
    locations=['samref.models', 'mmseg.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=mmseg_registry.WEIGHT_INITIALIZERS,
    scope='samref',
    locations=['samref.models', 'mmseg.models'])
OPTIMIZERS = Registry(
    'optimizer',
    parent=mmseg_registry.OPTIMIZERS,
    scope='samref',
    locations=['samref.engine', 'mmseg.engine.optimizers'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=mmseg_registry.OPTIM_WRAPPERS,
    scope='samref',
    locations=['samref.engine', 'mmseg.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=mmseg_registry.OPTIM_WRAPPER_CONSTRUCTORS,
    scope='samref',
    locations=['samref.engine', 'mmseg.engine.optimizers'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=mmseg_registry.PARAM_SCHEDULERS,
    scope='samref',
    locations=['samref.engine', 'mmseg.engine.schedulers'])
METRICS = Registry(
    'metric',
    parent=mmseg_registry.METRICS,
    scope='samref',
    locations=['samref.evaluation', 'mmseg.evaluation'])
EVALUATOR = Registry(
    'evaluator',
    parent=mmseg_registry.EVALUATOR,
    scope='samref',
    locations=['samref.evaluation', 'mmseg.evaluation'])
TASK_UTILS = Registry(
    'task util',
    parent=mmseg_registry.TASK_UTILS,
    scope='samref',
    locations=['samref.models', 'mmseg.models'])
VISUALIZERS = Registry(
    'visualizer',
    parent=mmseg_registry.VISUALIZERS,
    scope='samref',
    locations=['samref.visualization', 'mmseg.visualization'])
VISBACKENDS = Registry(
    'vis_backend',
    parent=mmseg_registry.VISBACKENDS,
    scope='samref',
    locations=['samref.visualization', 'mmseg.visualization'])
LOG_PROCESSORS = Registry(
    'log_processor',
    parent=mmseg_registry.LOG_PROCESSORS,
    scope='samref',
    locations=['samref.engine', 'mmseg.visualization'])
INFERENCERS = Registry(
    'inferencer',
    parent=mmseg_registry.INFERENCERS,
    scope='samref',
    locations=['samref.apis'])


def register_config_scope() -> None:
    """Let configs inherit ours with ``samref::<folder>/<config>.py``.

    mmengine resolves ``<scope>::`` only for the scopes it lists (its
    ``MODULE2PACKAGE``), at ``<installed path>/.mim/configs/`` (setup.py
    puts the configs there). It finds the installed path of a distribution
    at the distribution's location, which for an editable install is
    site-packages, not the source tree; for a module name that is no
    distribution it takes the module's folder, right for both kinds of
    install, so the scope names a module at the package's top level.
    Adding a scope changes nothing for the scopes already listed.
    """
    MODULE2PACKAGE.setdefault('samref', 'samref.version')
