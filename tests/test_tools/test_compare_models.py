# Copyright (c) samref contributors. All rights reserved.
import json

import cv2
import numpy as np
import pytest

from testing_utils import CONFIG_DIR, load_script


def load_tool():
    return load_script('tools/analysis_tools/compare_models.py')


def write_results(folder, curves, noc90):
    folder.mkdir(parents=True)
    summary = {
        dataset:
        dict({
            f'mIoU@{k}': v
            for k, v in enumerate(curve, 1)
        },
             NoC85=1.0,
             NoC90=noc90[dataset],
             NoC95=3.0,
             NoF90=2,
             NoF95=4,
             SPC=0.5,
             SPC_no_encoder=0.02)
        for dataset, curve in curves.items()
    }
    path = folder / 'results.json'
    path.write_text(
        json.dumps(dict(num_clicks=3, summary=summary, samples=[])))
    return str(path)


def test_results_of_several_models_in_one_table_and_plot(tmp_path):
    sam = write_results(tmp_path / 'SAM', {
        'GrabCut': [0.5, 0.7, 0.8],
        'DAVIS': [0.4, 0.6, 0.7]
    }, dict(GrabCut=2.5, DAVIS=4.0))
    focsam = write_results(tmp_path / 'FocSAM', {'GrabCut': [0.6, 0.8, 0.9]},
                           dict(GrabCut=1.5))
    rows = load_tool().main(
        ['--results', sam, focsam, '--work-dir',
         str(tmp_path / 'out')])
    assert [row[:2] for row in rows[1:]] == [['GrabCut', 'SAM'],
                                             ['GrabCut', 'FocSAM'],
                                             ['DAVIS', 'SAM']]
    assert rows[1][3] == '2.50' and rows[2][3] == '1.50'
    assert rows[2][7] == '60.00' and rows[2][-1] == '20.0'
    for name in ('GrabCut', 'DAVIS'):
        assert (tmp_path / 'out' / f'miou_curve_{name}.png').stat().st_size


def test_labels_must_be_distinct_and_match(tmp_path):
    tool = load_tool()
    with pytest.raises(SystemExit, match='distinct label'):
        tool.main(['--results', 'a.json', 'b.json', '--labels', 'x', 'x'])
    with pytest.raises(SystemExit, match='either --configs'):
        tool.main([])
    with pytest.raises(SystemExit, match='cannot read'):
        tool.main(['--results', str(tmp_path / 'missing.json')])


SMALL_FOCSAM = """
_base_ = ['{base}']
model = dict(refiner=dict(depth=2))
"""


def test_evaluates_sam_and_focsam_on_the_same_clicks(tmp_path):
    root = tmp_path / 'GrabCut'
    (root / 'data_GT').mkdir(parents=True)
    (root / 'boundary_GT').mkdir()
    image = np.random.default_rng(0).integers(
        0, 256, (40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(root / 'data_GT' / 'toy.jpg'), image)
    gt = np.zeros((40, 48), np.uint8)
    gt[10:30, 12:36] = 255
    cv2.imwrite(str(root / 'boundary_GT' / 'toy.bmp'), gt)
    focsam = tmp_path / 'focsam_small.py'
    focsam.write_text(
        SMALL_FOCSAM.format(base=CONFIG_DIR / 'focsam' / 'focsam_vit-tiny.py'))
    rows = load_tool().main([
        '--configs',
        str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py'),
        str(focsam), '--labels', 'SAM', 'FocSAM', '--datasets',
        f'grabcut={root}', '--num-clicks', '3', '--work-dir',
        str(tmp_path / 'out')
    ])
    assert [row[:2] for row in rows[1:]] == [['GrabCut', 'SAM'],
                                             ['GrabCut', 'FocSAM']]
    samples = [
        json.loads((tmp_path / 'out' / label /
                    'results.json').read_text())['samples'][0]
        for label in ('SAM', 'FocSAM')
    ]
    # Same random SAM weights: the first click is the same for both.
    assert samples[0]['clicks'][0] == samples[1]['clicks'][0]
    assert samples[0]['ious'][0] == samples[1]['ious'][0]
    assert samples[1]['branches'][:3] == ['sam', 'refine', 'sam']
    assert (tmp_path / 'out' / 'miou_curve_GrabCut.png').is_file()
