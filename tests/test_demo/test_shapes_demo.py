# Copyright (c) samref contributors. All rights reserved.
import json
import os
import re

from testing_utils import REPO_ROOT, load_script


def test_main_job_trains_both_stages_and_compares(tmp_path, monkeypatch,
                                                  capsys):
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
    printed = capsys.readouterr().out
    assert '[5/5]' in printed and re.search(r'\| SAM-REF +\|', printed)
    assert (tmp_path / 'stage1' / 'iter_2.pth').is_file()
    assert (tmp_path / 'stage2' / 'iter_2.pth').is_file()
    assert (tmp_path / 'miou_sam_vs_samref.png').stat().st_size > 0
    assert re.search(r'\| SAM-REF, box first +\|', printed)
    # Both models' pictures of the same two objects, one under the other,
    # for each protocol.
    assert len(os.listdir(tmp_path / 'eval_sam' / 'clicks')) == 2
    assert (tmp_path / 'sam_vs_samref_clicks.png').stat().st_size > 0
    assert (tmp_path / 'sam_vs_samref_box_first.png').stat().st_size > 0
    with open(tmp_path / 'eval_sam-ref_box_first' / 'results.json') as f:
        assert json.load(f)['first_prompt'] == 'box'
