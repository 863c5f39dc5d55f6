# Copyright (c) samref contributors. All rights reserved.
"""samref as an installed package seen from another project: the
``samref::`` config scope and what ``import samref`` changes."""
import os
import subprocess
import sys
import textwrap

import pytest

from testing_utils import REPO_ROOT


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in ``cwd``."""
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
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
        "_base_ = ['samref::samref/samref_vit-tiny.py']\n"
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


def test_the_samref_scope_finds_mmseg_registries_children():
    # What mmengine does for a component with _scope_='samref': the root
    # registry's child of that scope, whose parent is mmseg's registry.
    from mmengine.registry import DefaultScope
    from mmseg import registry as mmseg_registry

    from samref.registry import SCOPE_REGISTRIES
    assert sorted(SCOPE_REGISTRIES) == sorted(mmseg_registry.__all__)
    for name, child in SCOPE_REGISTRIES.items():
        parent = getattr(mmseg_registry, name)
        assert child.parent is parent and child.scope == 'samref'
        assert not child.module_dict  # lookups only, nothing registered
        with parent.switch_scope_and_registry('samref') as registry:
            assert registry is child, name
    with DefaultScope.overwrite_default_scope('samref'):
        assert SCOPE_REGISTRIES['MODELS'].get('SAMRef').__name__ == 'SAMRef'
        assert SCOPE_REGISTRIES['DATASETS'].get('GrabCutDataset')


def test_train_script_runs_a_scoped_config_from_the_users_project(tmp_path):
    from samref.datasets import make_shapes_dataset
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 2, seed=8)
    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'my_stage2.py').write_text(
        "_base_ = ['samref::demo/samref_tiny_256_stage2.py']\n"
        f"train_dataloader = dict(batch_size=1, num_workers=0, "
        f"dataset=dict(data_root={shapes!r}))\n"
        f"val_dataloader = dict(dataset=dict(data_root={shapes!r}))\n"
        'train_cfg = dict(max_iters=2)\n'
        'param_scheduler = [dict(type="ConstantLR", factor=1.0, '
        'by_epoch=False)]\n'
        'load_from = None\n')
    result = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'train.py'), 'my_stage2.py'
    ],
                            cwd=str(project),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # mmseg's default work dir, in the user's folder.
    assert (project / 'work_dirs' / 'my_stage2' / 'iter_2.pth').is_file()


def test_the_scope_resolves_to_the_packaged_configs():
    from mmengine.config import Config
    path, scope = Config._get_cfg_path('samref::sam/sam_vit-b.py', '')
    assert scope == 'samref'
    assert open(path).read() == (REPO_ROOT / 'configs' / 'sam' /
                                 'sam_vit-b.py').read_text()


def test_import_samref_has_no_process_wide_side_effects(tmp_path):
    result = run_python(
        """
        import matplotlib
        matplotlib.use('pdf')  # the user's choice, made before the import
        import torch
        from mmengine.runner.checkpoint import CheckpointLoader
        loaders = dict(CheckpointLoader._schemes)

        import samref
        from samref.visualization import plot_miou_curves

        plot_miou_curves({'a': [0.5, 0.9]}, 'curve.png')
        import matplotlib.pyplot as plt
        print(matplotlib.get_backend(), len(plt.get_fignums()),
              CheckpointLoader._schemes == loaders)
        """, tmp_path)
    # The backend stays the user's, the plot leaves no pyplot figure open,
    # mmengine's loaders are untouched.
    assert result.stdout.split() == ['pdf', '0', 'True']
    assert (tmp_path / 'curve.png').read_bytes()[:4] == b'\x89PNG'


def test_training_checkpoints_load_with_plain_torch(tmp_path):
    # What mmseg's tools/misc/publish_model.py does with a checkpoint, in a
    # process that never imports samref: torch.load (weights-only by
    # default since torch 2.6), drop the optimizer, save.
    import torch
    from mmengine.config import Config
    from mmengine.logging import HistoryBuffer
    from mmseg.registry import RUNNERS

    from samref.datasets import make_shapes_dataset
    from testing_utils import CONFIG_DIR, NO_VALIDATION

    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 3, seed=4)
    cfg = Config.fromfile(str(CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'))
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': shapes,
        'train_dataloader.batch_size': 1,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': 2,
        'param_scheduler.0.end': 1,
        'param_scheduler.1.begin': 1,
        'param_scheduler.1.end': 2,
        'default_hooks.checkpoint.interval': 2,
        'work_dir': str(tmp_path / 'work'),
        'load_from': None,
        'experiment_name': 'publish',
        **NO_VALIDATION,
    })
    RUNNERS.build(cfg).train()
    checkpoint = tmp_path / 'work' / 'iter_2.pth'
    result = run_python(
        f"""
        import sys
        import torch
        checkpoint = torch.load({str(checkpoint)!r}, map_location='cpu')
        del checkpoint['optimizer']
        torch.save(checkpoint, 'published.pth')
        assert 'samref' not in sys.modules
        print(sorted(checkpoint['message_hub']['log_scalars']))
        """, tmp_path)
    assert "'train/loss'" in result.stdout
    # The runner reads its history back as buffers (resuming logs on).
    cfg.merge_from_dict({
        'load_from': str(checkpoint),
        'resume': True,
        'train_cfg.max_iters': 3,
        'param_scheduler.1.end': 3,
        'experiment_name': 'publish_resumed'
    })
    runner = RUNNERS.build(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer) and len(loss.data[0]) == 3
    published = torch.load(tmp_path / 'published.pth', weights_only=True)
    assert 'optimizer' not in published and published['state_dict']
    # The checkpoint needs no global beyond what the toolbox's loader
    # accepts, and our release tool's output passes its hash check.
    from samref.utils import load_checkpoint_file
    assert load_checkpoint_file(str(checkpoint))['meta']['iter'] == 2
    result = run_python(
        f"""
        import runpy, sys
        sys.argv = ['publish_model.py', {str(checkpoint)!r}, 'release.pth']
        runpy.run_path({str(REPO_ROOT / 'tools' / 'misc' /
                            'publish_model.py')!r}, run_name='__main__')
        """, tmp_path)
    release = next(tmp_path.glob('release-*.pth'))
    assert release.name in result.stdout
    loaded = load_checkpoint_file(str(release))
    assert 'optimizer' not in loaded and loaded['state_dict']
    # mmseg 1.x's script names its output after its input's hash: refused,
    # with the reason.
    import mmseg
    mmseg_script = os.path.join(
        os.path.dirname(mmseg.__file__), '.mim', 'tools', 'misc',
        'publish_model.py')
    run_python(
        f"""
        import runpy, sys, time, glob
        sys.argv = ['publish_model.py', {str(checkpoint)!r}, 'mmseg.pth']
        runpy.run_path({mmseg_script!r}, run_name='__main__')
        while not glob.glob('mmseg-*.pth'):  # it moves the file with `mv &`
            time.sleep(0.05)
        """, tmp_path)
    with pytest.raises(
            RuntimeError, match='names its output after the '
            'hash of its input'):
        load_checkpoint_file(str(next(tmp_path.glob('mmseg-*.pth'))))


def test_license_file_is_the_one_setup_py_declares():
    setup_py = (REPO_ROOT / 'setup.py').read_text()
    assert "license='Apache License 2.0'" in setup_py
    text = ' '.join((REPO_ROOT / 'LICENSE').read_text().split())
    assert text.startswith('Apache License Version 2.0, January 2004')
    assert 'END OF TERMS AND CONDITIONS' in text


def test_citation_file_names_this_version_and_the_paper():
    import yaml

    from samref import __version__
    citation = yaml.safe_load((REPO_ROOT / 'CITATION.cff').read_text())
    assert citation['cff-version'] == '1.2.0'
    assert citation['version'] == __version__
    assert citation['license'] == 'Apache-2.0'  # as setup.py and LICENSE
    paper = citation['preferred-citation']
    assert paper['title'].startswith('SAM-REF')
    assert '2408.11535' in paper['url']
