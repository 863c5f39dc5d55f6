# Copyright (c) samref contributors. All rights reserved.
"""The README's commands, as a user types them after ``make`` and
``source .venv/bin/activate``."""
import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from samref.datasets import make_shapes_dataset
from testing_utils import NO_VALIDATION_OPTIONS, REPO_ROOT

# The script each launcher passes its options to.
LAUNCHED = {
    'tools/dist_train.sh': 'tools/train.py',
    'tools/slurm_train.sh': 'tools/train.py',
    'tools/dist_test.sh': 'tools/test.py',
    'tools/slurm_test.sh': 'tools/test.py',
}


def readme_commands():
    """``python tools/...`` and ``bash tools/...`` commands of the shell
    blocks of the README and the model zoo pages, continuation lines
    joined."""
    pages = [REPO_ROOT / 'README.md'] + sorted(
        (REPO_ROOT / 'configs').glob('*/README.md'))
    text = '\n'.join(page.read_text() for page in pages)
    commands = []
    for block in re.findall(r'```shell\n(.*?)```', text, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if re.match(r'(python|bash) (tools|demo)/', line):
                commands.append(line)
    return commands


def script_help(script: str) -> str:
    """The ``--help`` text of a Python script of the repository."""
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [script, '--help']
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            runpy.run_path(str(REPO_ROOT / script), run_name='__main__')
    finally:
        sys.argv = argv
    return out.getvalue()


def test_readme_commands_name_existing_scripts_configs_and_options():
    commands = readme_commands()
    assert len(commands) >= 10
    helps = {}
    for command in commands:
        words = shlex.split(command)
        script = words[1]
        assert (REPO_ROOT / script).is_file(), command
        for word in words[2:]:
            if word.startswith('configs/') and '$' not in word:
                assert (REPO_ROOT / word).is_file(), command
        python_script = LAUNCHED.get(script, script)
        if python_script not in helps:
            helps[python_script] = script_help(python_script)
        for option in (w for w in words if w.startswith('--')):
            assert re.search(rf'{re.escape(option)}\b',
                             helps[python_script]), (option, command)


def test_readme_training_command_runs_in_the_activated_environment(tmp_path):
    # Only what `make` leaves: the activated .venv, no PYTHON, no PYTHONPATH.
    activate = Path(sys.prefix) / 'bin' / 'activate'
    if not activate.is_file():
        pytest.skip('the tests do not run from a virtual environment')
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 3, seed=1)
    options = ' '.join([
        f'train_dataloader.dataset.data_root={shapes}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_cfg.max_iters=2', 'param_scheduler.0.end=1',
        'param_scheduler.1.begin=1', 'param_scheduler.1.end=2',
        'default_hooks.checkpoint.interval=2', 'load_from=None'
    ] + NO_VALIDATION_OPTIONS)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHON', 'PYTHONPATH', 'VIRTUAL_ENV')
    }
    env['PATH'] = '/usr/local/bin:/usr/bin:/bin'
    env['PORT'] = '29731'
    command = (f'source {activate} && bash tools/dist_train.sh '
               'configs/demo/samref_tiny_256_stage2.py 1 '
               f'--work-dir {tmp_path / "work"} --cfg-options {options}')
    proc = subprocess.run(['bash', '-c', command],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
    if not torch.cuda.is_available():
        # Said once, before any process starts.
        assert proc.stderr.count('no CUDA device visible') == 1
        assert proc.stderr.index('no CUDA device visible') < proc.stderr.find(
            'mmengine')
