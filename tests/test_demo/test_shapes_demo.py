# Copyright (c) samref contributors. All rights reserved.
import json
import os
import re

import pytest

from samref.apis.demo_steps import STAGE1, run_distributed
from testing_utils import REPO_ROOT, load_script


def test_main_job_trains_both_stages_and_compares(tmp_path, monkeypatch,
                                                  capfd):
    monkeypatch.chdir(REPO_ROOT)
    demo = load_script('demo/shapes_demo.py')
    summaries = demo.main([
        '--work-dir',
        str(tmp_path), '--stage1-iters', '2', '--stage2-iters', '2',
        '--train-images', '4', '--val-images', '2', '--show', '2'
    ])
    assert set(summaries) == {
        'SAM', 'SAM-REF', 'SAM, box first', 'SAM-REF, box first'
    }
    objects = len(os.listdir(tmp_path / 'shapes' / 'val' / 'gt'))
    assert all(s['num_objects'] == objects for s in summaries.values())
    printed = capfd.readouterr().out
    assert '[5/5]' in printed and re.search(r'\| SAM-REF +\|', printed)
    assert (tmp_path / 'stage1' / 'iter_2.pth').is_file()
    assert (tmp_path / 'stage2' / 'iter_2.pth').is_file()
    # Without a GPU both stages train in two gloo processes of half the
    # batch each, and only the first one prints its progress.
    for stage, config, title in (('stage1', 'sam_tiny_256_stage1', 'SAM'),
                                 ('stage2', 'samref_tiny_256_stage2',
                                  'SAM-REF')):
        dumped = (tmp_path / stage / f'{config}.py').read_text()
        assert "launcher = 'pytorch'" in dumped
        assert re.search(r'train_dataloader = dict\(\s*batch_size=2,', dumped)
        assert len(re.findall(rf'\[{title}\] iter +2/2', printed)) == 1
    assert (tmp_path / 'miou_sam_vs_samref.png').stat().st_size > 0
    assert re.search(r'\| SAM-REF, box first +\|', printed)
    # Both models' pictures of the same two objects, one under the other,
    # for each protocol.
    assert len(os.listdir(tmp_path / 'eval_sam' / 'clicks')) == 2
    assert (tmp_path / 'sam_vs_samref_clicks.png').stat().st_size > 0
    assert (tmp_path / 'sam_vs_samref_box_first.png').stat().st_size > 0
    with open(tmp_path / 'eval_sam-ref_box_first' / 'results.json') as f:
        assert json.load(f)['first_prompt'] == 'box'


def test_distributed_training_refuses_a_batch_that_does_not_split(
        tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    job = dict(
        config=STAGE1, work_dir=str(tmp_path), overrides={}, title='SAM')
    with pytest.raises(
            ValueError,
            match=r'sam_tiny_256_stage1\.py: '
            r'train_dataloader\.batch_size 4 does not split '
            r'among 3 processes'):
        run_distributed(job, 3)
    assert not os.listdir(tmp_path)
