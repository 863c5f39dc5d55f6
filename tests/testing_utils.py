# Copyright (c) samref contributors. All rights reserved.
"""Paths and builders shared by the tests."""
import importlib.util
from pathlib import Path
from types import ModuleType

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
