# Copyright (c) samref contributors. All rights reserved.
"""The commands of the README, the docs and the model zoo pages, as a user
types them after ``make`` and ``source .venv/bin/activate``."""
import contextlib
import importlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import mmseg
import pytest
import torch

from samref.datasets import make_shapes_dataset
from testing_utils import NO_VALIDATION_OPTIONS, REPO_ROOT

PAGES = [REPO_ROOT / 'README.md'] + sorted(
    (REPO_ROOT / 'configs').glob('*/README.md')) + sorted(
        (REPO_ROOT / 'docs').rglob('*.md'))
# The script each launcher passes its options to.
LAUNCHED = {
    'tools/dist_train.sh': 'tools/train.py',
    'tools/slurm_train.sh': 'tools/train.py',
    'tools/dist_test.sh': 'tools/test.py',
    'tools/slurm_test.sh': 'tools/test.py',
}
# mmseg's tools, as the docs point at them.
MMSEG_TOOLS = Path(mmseg.__file__).parent / '.mim' / 'tools'
SCRIPT = re.compile(r'(?:tools|demo)/\S+\.(?:py|sh)|\$MMSEG_TOOLS/\S+\.py')
# Paths of the repository a page names, in commands or in backquotes.
REPO_PATH = re.compile(
    r'(?<![\w./:-])((?:configs|tools|demo|samref|tests|requirements|docs)/'
    r'[\w./*{},<>$-]*[\w*}>])')


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


def shell_lines(page: Path) -> list:
    """The lines of a page's shell blocks, continuation lines joined and
    comments dropped."""
    lines = []
    for block in re.findall(r'```(?:shell|bash)\n(.*?)```', page.read_text(),
                            re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if line and not line.startswith('#'):
                lines.append(line)
    return lines


def readme_commands(pages=PAGES) -> list:
    """The lines of the pages' shell blocks that run a script of the
    repository or of mmseg."""
    return [
        line for page in pages for line in shell_lines(page)
        if SCRIPT.search(line)
    ]


def script_help(script: str) -> str:
    """The ``--help`` text of a Python script of the repository; the
    ``add_argument`` calls of one of mmseg's (its imports may need the
    optional requirements)."""
    if script.startswith('$MMSEG_TOOLS/'):
        path = MMSEG_TOOLS / script[len('$MMSEG_TOOLS/'):]
        assert path.is_file(), script
        return ' '.join(
            re.findall(r"add_argument\(\s*'([^']+)'", path.read_text()))
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [script, '--help']
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            runpy.run_path(str(REPO_ROOT / script), run_name='__main__')
    finally:
        sys.argv = argv
    return out.getvalue()


def test_the_readme_is_an_entry_page():
    lines = (REPO_ROOT / 'README.md').read_text().splitlines()
    assert len(lines) < 300
    for section in ('## Introduction', '## Installation', '## Get started',
                    '## Model zoo', '## Citation', '## License'):
        assert section in lines, section


def test_readme_commands_name_existing_scripts_configs_and_options():
    commands = readme_commands()
    assert len(commands) >= 40
    helps = {}
    for command in commands:
        words = shlex.split(command)
        start = next(i for i, w in enumerate(words) if SCRIPT.fullmatch(w))
        script, args = words[start], words[start + 1:]
        if not script.startswith('$'):
            assert (REPO_ROOT / script).is_file(), command
        python_script = LAUNCHED.get(script, script)
        if python_script not in helps:
            helps[python_script] = script_help(python_script)
        for option in (w.split('=')[0] for w in args if w.startswith('--')):
            assert re.search(rf'{re.escape(option)}\b',
                             helps[python_script]), (option, command)


def make_targets() -> set:
    return set(
        re.findall(r'^([a-z][\w-]*):', (REPO_ROOT / 'Makefile').read_text(),
                   re.M))


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_make_commands_name_existing_targets(page):
    targets = make_targets()
    makefile = (REPO_ROOT / 'Makefile').read_text()
    for line in shell_lines(page):
        words = shlex.split(line)
        if words[0] != 'make':
            continue
        goals = [w for w in words[1:] if '=' not in w] or ['install']
        assert set(goals) <= targets, line
        for setting in (w for w in words[1:] if '=' in w):
            name = setting.split('=', 1)[0]
            assert re.search(rf'^{name} \?=', makefile, re.M), line


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_pages_name_existing_files_and_links(page):
    text = page.read_text()
    for path in REPO_PATH.findall(text):
        if re.search(r'[*{$<]|\.\.\.|/my_',
                     path) or path.startswith('samref/.mim'):
            continue  # a pattern, an example or the installed copy
        assert (REPO_ROOT / path).exists(), (page_id(page), path)
    for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', text):
        if '://' in target:
            continue
        assert (page.parent / target).exists(), (page_id(page), target)


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_anchors_of_links_between_pages_exist(page):
    for target, anchor in re.findall(r'\]\(([^)#\s]*)#([^)\s]+)\)',
                                     page.read_text()):
        linked = page.parent / target if target else page
        if linked.suffix != '.md':
            continue
        assert anchor in heading_anchors(linked), (page_id(page), target,
                                                   anchor)


def heading_anchors(page: Path) -> set:
    """The anchors GitHub gives the headings of a Markdown page."""
    return {
        re.sub(r'[^\w -]', '',
               heading.strip().lower()).replace(' ', '-')
        for heading in re.findall(r'^#+ (.*)$', page.read_text(), re.M)
    }


def test_code_comments_cite_existing_pages():
    sources = [REPO_ROOT / 'Makefile'] + [
        path for folder in ('samref', 'configs', 'tools', 'demo', 'tests')
        for path in (REPO_ROOT / folder).rglob('*')
        if path.suffix in ('.py', '.sh', '.md', '.yaml')
    ]
    cited = 0
    for source in sources:
        for page, anchor in re.findall(r'(docs/en/[\w/]+\.md)(?:#([\w-]+))?',
                                       source.read_text()):
            assert (REPO_ROOT / page).is_file(), (source, page)
            if anchor:
                assert anchor in heading_anchors(REPO_ROOT / page), (source,
                                                                     anchor)
            cited += 1
    assert cited >= 5


@pytest.mark.parametrize('page', PAGES, ids=page_id)
def test_python_snippets_import_what_exists(page):
    text = page.read_text()
    for block in re.findall(r'```python\n(.*?)```', text, re.S):
        compile(textwrap.dedent(block), page_id(page), 'exec')
        for module, names in re.findall(r'^from (samref[\w.]*) import (.+)$',
                                        block, re.M):
            imported = importlib.import_module(module)
            for name in names.split(','):
                assert hasattr(imported, name.strip()), (module, name)
        for base in re.findall(r"'samref::([^']+)'", block):
            assert (REPO_ROOT / 'configs' / base).is_file(), base


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
