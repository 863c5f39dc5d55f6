# Copyright (c) samref contributors. All rights reserved.
"""samref as an installed package seen from another project: the
``samref::`` config scope and what ``import samref`` changes."""
import subprocess
import sys
import textwrap

from testing_utils import REPO_ROOT


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in ``cwd``."""
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            cwd=str(cwd),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_configs_inherit_ours_from_a_folder_outside_the_repo(tmp_path):
    # A user's project: its own folder, its own config, our configs by scope.
    project = tmp_path / 'my_project'
    (project / 'configs').mkdir(parents=True)
    (project / 'configs' / 'my_samref.py').write_text(
        "_base_ = ['samref::samref/vit_tiny.py']\n"
        'model = dict(global_refiner=dict(num_blocks=1))\n')
    result = run_python(
        """
        import os
        import samref
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        assert 'samref' not in os.listdir('.')
        cfg = Config.fromfile('configs/my_samref.py')
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.model)
        print(type(model).__name__, len(model.global_refiner.blocks),
              cfg.runner_type, cfg.model.image_encoder.arch)
        """, project)
    # The base's own _base_ chain resolved (runtime, model), the override
    # applied, and the scoped components built without a warning.
    assert result.stdout.split() == ['SAMRef', '1', 'SafeLoadRunner', 'tiny']
    assert 'registry' not in result.stderr, result.stderr


def test_the_scope_resolves_to_the_packaged_configs():
    from mmengine.config import Config
    path, scope = Config._get_cfg_path('samref::sam/sam_vit-b.py', '')
    assert scope == 'samref'
    assert open(path).read() == (REPO_ROOT / 'configs' / 'sam' /
                                 'sam_vit-b.py').read_text()
