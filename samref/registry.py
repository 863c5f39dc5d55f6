# Copyright (c) samref contributors. All rights reserved.
"""The ``samref`` registry scope and the ``samref::`` config scope.

samref registers its components into mmseg's registries, and its configs
set ``default_scope = 'mmseg'``, so mmseg's tools and mmengine's ``Runner``
find them. A config of another project that inherits ours,
``_base_ = ['samref::samref/samref_vit-h_4xb4-80k_coco-lvis.py']``, gets
``_scope_='samref'`` on its components, and mmengine builds those from the
registries of the ``samref`` scope; without such registries it falls back
to mmengine's root registries, which know none of mmseg's or samref's
components.

:data:`SCOPE_REGISTRIES` holds those registries: one child of each of
mmseg's registries with the scope ``samref``. Nothing registers into them;
they find every component in their parents (samref's, mmseg's and
mmengine's). Each imports ``samref`` and its parent's locations, which a
lookup through a child does not import (and without locations of its own
mmengine would look for a ``samref.utils.register_all_modules``).
"""
from typing import Dict

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry


def _scope_registry(parent: Registry) -> Registry:
    """A registry of the ``samref`` scope that finds ``parent``'s items.

    Args:
        parent (Registry): One of mmseg's registries.

    Returns:
        Registry: Its child with the scope ``samref``.
    """
    return Registry(
        parent.name,
        parent=parent,
        scope='samref',
        locations=['samref', *parent._locations])


# mmseg's registry name (``MODELS``, ``DATASETS``, ...) -> its child.
SCOPE_REGISTRIES: Dict[str, Registry] = {
    name: _scope_registry(getattr(mmseg_registry, name))
    for name in mmseg_registry.__all__
}


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
