# Copyright (c) samref contributors. All rights reserved.
import json

import pytest

from samref.visualization import plot_loss_curves, read_training_scalars


def write_scalars(work_dir, timestamp, records):
    folder = work_dir / timestamp / 'vis_data'
    folder.mkdir(parents=True)
    with open(folder / 'scalars.json', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)


def test_reads_the_newest_run_and_keeps_training_records(tmp_path):
    write_scalars(tmp_path, '20260101_000000', [{
        'loss': 9.0,
        'loss_nfl': 9.0,
        'step': 20
    }])
    write_scalars(tmp_path, '20260102_000000', [
        {
            'loss': 1.0,
            'loss_nfl': 0.4,
            'loss_dice': 0.6,
            'step': 20
        },
        {
            'Shapes/NoC90': 19.0,
            'step': 40
        },
        {
            'loss': 0.8,
            'loss_nfl': 0.3,
            'loss_dice': 0.5,
            'step': 40
        },
    ])
    records = read_training_scalars(str(tmp_path))
    assert [r['step'] for r in records] == [20, 40]
    assert records[1]['loss_dice'] == 0.5
    out = plot_loss_curves({'stage 1': records}, str(tmp_path / 'loss.png'))
    assert (tmp_path / 'loss.png').stat().st_size > 0
    assert out == str(tmp_path / 'loss.png')


def test_a_work_dir_without_scalars_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_training_scalars(str(tmp_path))


def test_a_run_without_records_is_refused(tmp_path):
    with pytest.raises(ValueError, match='at least one'):
        plot_loss_curves({'stage 1': []}, str(tmp_path / 'loss.png'))
