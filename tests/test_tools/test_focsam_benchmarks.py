# Copyright (c) samref contributors. All rights reserved.

from testing_utils import CONFIG_DIR, load_script

SAM_TINY = str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')
SMALL_FOCSAM = """
_base_ = ['{base}']
model = dict(refiner=dict(depth=2))
"""


def load_tool(name: str):
    return load_script(f'tools/analysis_tools/{name}.py')


def small_focsam(tmp_path) -> str:
    path = tmp_path / 'focsam_small.py'
    path.write_text(
        SMALL_FOCSAM.format(base=CONFIG_DIR / 'focsam' / 'focsam_vit-tiny.py'))
    return str(path)


def test_spc_times_the_refine_click_and_sat_side_by_side(tmp_path):
    focsam = small_focsam(tmp_path)
    rows = load_tool('benchmark_spc').main(
        [SAM_TINY, focsam, '--clicks', '3', '--samples', '1', '--sat', '2'])
    header = rows[0]
    refine, sat = header.index('refine click (ms)'), header.index('SAT (s)')
    assert rows[1][refine] == '-' and float(rows[2][refine]) > 0
    assert float(rows[1][sat]) > 0 and float(rows[2][sat]) > 0
    stages = rows[2][header.index('stages (ms/click)')]
    assert 'coarse_decoder' in stages and 'focus_refiner' in stages
    # FocSAM has no PatchDiff; stage ablation leaves it whole.
    assert rows[2][header.index('PatchDiff (%)')] == '-'
    ablated = load_tool('benchmark_spc').main(
        [focsam, '--ablate-stages', '--clicks', '2', '--samples', '1'])
    assert [row[0] for row in ablated[1:]] == [focsam]


def test_sat_accepts_focsam(tmp_path):
    rows = load_tool('benchmark_sat').main(
        [small_focsam(tmp_path), '--grid', '2'])
    assert float(rows[1][1]) > 0
