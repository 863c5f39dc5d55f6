# Copyright (c) samref contributors. All rights reserved.
import json

import pytest

from testing_utils import CONFIG_DIR, load_script

TINY = str(CONFIG_DIR / 'sam' / 'sam_vit-tiny.py')


def load_tool(name: str):
    return load_script(f'tools/analysis_tools/{name}.py')


def test_benchmark_sat_times_every_grid_point(monkeypatch, capsys):
    tool = load_tool('benchmark_sat')
    calls = []
    from samref.models import SAM
    original = SAM.interact

    def counting(self, *args, **kwargs):
        calls.append(args[1].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SAM, 'interact', counting)
    rows = tool.main([TINY, '--grid', '3'])
    assert len(calls) == 9  # one point at a time
    assert all(shape == (1, 1, 2) for shape in calls)
    assert rows[1][0] == TINY and rows[1][4] == '1.00x'
    assert float(rows[1][1]) >= float(rows[1][2]) > 0
    assert 'SAT latency, 3x3 points' in capsys.readouterr().out


def test_benchmark_spc_compares_models_in_one_run():
    tool = load_tool('benchmark_spc')
    rows = tool.main([TINY, TINY, '--clicks', '2', '--samples', '1'])
    assert len(rows) == 3
    assert rows[1][2] == '1.00x' and rows[1][4] == '1.00x'
    assert float(rows[2][1]) > 0


def test_benchmark_spc_takes_the_models_interactions_in_turns(monkeypatch):
    tool = load_tool('benchmark_spc')
    samref = str(CONFIG_DIR / 'samref' / 'samref_vit-tiny.py')
    order = []

    def fake_interaction(model, clicks, seed, image_size):
        order.append((type(model).__name__, seed))
        return dict(
            clicks=[0.01 * (1 + len(order))] * clicks,
            spc=0.1,
            encode=0.5,
            stage_times={},
            branches=[])

    class FixedPeak:
        # Every block peaks at 1000 MB of the process.
        def __init__(self, device):
            self.peak_mb = None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.peak_mb = 1000.0

    monkeypatch.setattr(tool, 'measure_interaction', fake_interaction)
    monkeypatch.setattr(tool, 'PeakMemory', FixedPeak)
    built = []
    init_model = tool.init_model
    monkeypatch.setattr(tool, 'init_model',
                        lambda *a: built.append(init_model(*a)) or built[-1])
    rows = tool.main([TINY, samref, '--clicks', '2', '--samples', '3'])
    # One interaction of each model a round, not all of one model first.
    assert order == [('SAM', 0), ('SAMRef', 0), ('SAM', 1), ('SAMRef', 1),
                     ('SAM', 2), ('SAMRef', 2)]
    assert [row[1] for row in rows[1:]] == ['40.0', '50.0']  # medians
    weights = [
        sum(t.numel() * t.element_size()
            for t in (*m.parameters(), *m.buffers())) / 2**20 for m in built
    ]
    # A row's peak is the process's less the other model's weights.
    assert [float(row[-1]) for row in rows[1:]
            ] == [round(1000 - weights[1]),
                  round(1000 - weights[0])]


def test_benchmark_spc_ablates_stages_and_refiner_precision():
    samref = str(CONFIG_DIR / 'samref' / 'samref_vit-tiny.py')
    rows = load_tool('benchmark_spc').main([
        samref, '--ablate-stages', '--refiner-dtypes', 'float32', 'bfloat16',
        '--clicks', '2', '--samples', '1'
    ])
    labels = [row[0][len(samref) + 1:] for row in rows[1:]]
    assert labels == [
        'SAM', '+GD', '+GD (bfloat16)', '+GD+PD', '+GD+PD (bfloat16)',
        '+GD+PD+DPS', '+GD+PD+DPS (bfloat16)'
    ]
    assert rows[1][6] == 'sam ' + rows[1][6].split()[1]  # SAM: one stage
    assert 'global_diff' in rows[2][6] and 'patch_diff' in rows[4][6]


def test_benchmark_spc_labels_what_auto_precision_resolves_to(monkeypatch):
    samref = str(CONFIG_DIR / 'samref' / 'samref_vit-tiny.py')
    tool = load_tool('benchmark_spc')
    for fast, resolved in ((True, 'bfloat16'), (False, 'float32')):
        monkeypatch.setattr(tool, 'has_fast_bfloat16', lambda device: fast)
        rows = tool.main([
            samref, '--refiner-dtypes', 'auto', '--clicks', '1', '--samples',
            '1'
        ])
        assert rows[1][0] == f'{samref} (auto: {resolved})'


def test_benchmarks_need_one_checkpoint_per_config():
    with pytest.raises(SystemExit, match='one checkpoint per config'):
        load_tool('benchmark_spc').main([TINY, TINY, '--checkpoints', 'a.pth'])


def write_results(path, label, curve):
    path.write_text(
        json.dumps(
            dict(
                label=label,
                num_clicks=len(curve),
                summary={
                    'GrabCut': {
                        f'mIoU@{k}': v
                        for k, v in enumerate(curve, 1)
                    }
                },
                samples=[])))


def test_plot_one_curve_per_model(tmp_path):
    tool = load_tool('plot_miou_curve')
    write_results(tmp_path / 'a.json', 'sam', [0.5, 0.7, 0.8])
    write_results(tmp_path / 'b.json', None, [0.6, 0.8, 0.9])
    curves = tool.load_curves(str(tmp_path / 'a.json'), None)
    assert curves == {'sam GrabCut': [0.5, 0.7, 0.8]}
    out = tool.main([
        str(tmp_path / 'a.json'),
        str(tmp_path / 'b.json'), '--out',
        str(tmp_path / 'plot.png')
    ])
    assert (tmp_path / 'plot.png').stat().st_size > 0 and out.endswith('png')


def test_plot_names_an_unreadable_results_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"summary": ')
    with pytest.raises(SystemExit, match='bad.json'):
        load_tool('plot_miou_curve').main([str(bad)])


def test_benchmark_train_step_times_both_ways(monkeypatch):
    tool = load_tool('benchmark_train_step')
    encoder_calls = []
    from samref.models import SAMImageEncoder
    original = SAMImageEncoder.forward

    def counting(self, x):
        encoder_calls.append(1)
        return original(self, x)

    monkeypatch.setattr(SAMImageEncoder, 'forward', counting)
    rows = tool.main([
        str(CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'), '--steps', '1'
    ])
    # 2 steps with the encoder, 1 call to extract, none with embeddings.
    assert len(encoder_calls) == 3
    assert rows[1][2] == '1.00x' and float(rows[2][2].rstrip('x')) > 0
    assert rows[0][3] == 'peak MB' and float(rows[1][3]) > 100


def test_benchmark_spc_ablates_only_the_samref_configs():
    samref = str(CONFIG_DIR / 'samref' / 'samref_vit-tiny.py')
    tool = load_tool('benchmark_spc')
    runs = tool.expand(tool.parse_args([TINY, samref, '--ablate-stages']))
    # SAM's config is timed as it is: no SAM-REF stage switch reaches it.
    assert [(label, options)
            for label, _, _, options in runs[:1]] == [(TINY, {})]
    assert [label[len(samref) + 1:] for label, *_ in runs[1:]
            ] == ['SAM', '+GD', '+GD+PD', '+GD+PD+DPS']
    assert all('model.use_global' in options for *_, options in runs[1:])


def test_grid_ceiling_of_aligned_and_thin_objects():
    import numpy as np
    ceiling = load_tool('mask_grid_ceiling').grid_ceiling_iou
    square = np.zeros((64, 64), np.int8)
    square[16:48, 8:40] = 1  # whole cells of a 16 x 16 grid (4 pixels)
    # Bilinear upsampling only rounds the corners off.
    assert ceiling(square, (64, 64), 64, 16) == pytest.approx(1, abs=0.01)
    assert ceiling(square, (64, 64), 64, 64) == 1.0
    line = np.zeros((64, 64), np.int8)
    line[29:32, 4:60] = 1  # three pixels wide, inside 4-pixel cells
    coarse = ceiling(line, (64, 64), 64, 4)
    assert coarse < 0.5
    assert coarse < ceiling(line, (64, 64), 64, 16) < 1.0
    assert ceiling(line, (64, 64), 64, 64) == 1.0
    # Ignored pixels count in neither the intersection nor the union.
    line[29:32, 4:20] = -1
    assert ceiling(line, (64, 64), 64, 64) == 1.0
    with pytest.raises(ValueError, match='grid 24 does not divide'):
        ceiling(line, (64, 64), 64, 24)


def test_grid_ceiling_on_a_dataset_rises_with_the_grid(tmp_path, capsys):
    from samref.datasets import make_shapes_dataset
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 2, seed=4)
    rows = load_tool('mask_grid_ceiling').main([
        str(CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'), '--grids', '8',
        '16', '64', '--cfg-options',
        f'test_dataloader.dataset.data_root={shapes}'
    ])
    assert [row[0] for row in rows] == ['grid', '8 x 8', '16 x 16', '64 x 64']
    mious = [float(row[1]) for row in rows[1:]]
    assert mious[0] < mious[1] < mious[2]
    assert mious[2] > 90  # 4-pixel cells: only the finest details are lost
    assert 'objects' in capsys.readouterr().out
