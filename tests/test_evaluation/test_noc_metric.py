# Copyright (c) samref contributors. All rights reserved.
import json

import pytest

from samref.evaluation import NoCMetric
from samref.evaluation.metrics import noc_metric


def record(dataset, subset, ious, encode_time=1.0, click_time=0.1):
    clicks = [[0, 0, 1]] * len(ious)
    return dict(
        img_path=f'{dataset}.jpg',
        dataset_name=dataset,
        subset=subset,
        encode_time=encode_time,
        objects=[
            dict(
                index=0,
                ious=ious,
                clicks=clicks,
                num_clicks=len(ious),
                click_time=click_time * len(ious),
                interact_time=0.5 * click_time * len(ious),
                stage_times=dict(decoder=0.25 * click_time * len(ious)))
        ])


def test_groups_by_dataset_and_part(tmp_path, monkeypatch):
    printed = []
    monkeypatch.setattr(noc_metric, 'print_log',
                        lambda msg, **kwargs: printed.append(msg))
    metric = NoCMetric(output_dir=str(tmp_path), label='toy')
    metric.process({}, [
        record('HQ', 'DIS', [0.5, 0.9, 0.96, 0.97]),
        record('HQ', 'COIFT', [0.2, 0.3, 0.4, 0.5]),
        record('GrabCut', None, [0.91, 0.91, 0.91, 0.91]),
    ])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['HQ/num_objects'] == 2
    assert metrics['HQ/DIS/NoC90'] == 2
    assert metrics['HQ/COIFT/NoC90'] == 4  # never: the click budget
    assert metrics['HQ/NoC90'] == 3
    assert metrics['HQ/NoF95'] == 1
    assert metrics['GrabCut/NoC90'] == 1
    assert metrics['GrabCut/NoF95'] == 1
    assert metrics['HQ/mIoU@2'] == pytest.approx(0.6)
    # SPC = (encoding + clicking) / clicks; without encoder: interact only.
    assert metrics['HQ/SPC'] == pytest.approx((2 * 1.0 + 8 * 0.1) / 8)
    assert metrics['HQ/SPC_no_encoder'] == pytest.approx(0.05)
    assert metrics['HQ/stage_decoder'] == pytest.approx(0.025)
    printed = '\n'.join(printed)
    for row in ('HQ/DIS', 'HQ/COIFT', 'GrabCut', 'NoF95', '20-mIoU'):
        assert row in printed
    assert 'click first' in printed
    content = json.loads((tmp_path / 'results.json').read_text())
    assert content['label'] == 'toy' and content['num_clicks'] == 4
    assert content['first_prompt'] == 'click'
    assert [s['dataset']
            for s in content['samples']] == ['HQ', 'HQ', 'GrabCut']
    assert content['summary']['HQ/DIS']['NoC90'] == 2
    assert (tmp_path / 'miou_curve.png').stat().st_size > 0
    assert not list(tmp_path.glob('*.tmp'))


def test_without_output_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metric = NoCMetric()
    metric.process({}, [record('GrabCut', None, [0.5, 0.95])])
    assert metric.compute_metrics(metric.results)['GrabCut/NoC95'] == 2
    assert list(tmp_path.iterdir()) == []


def test_nof_printed_and_saved_counts_the_last_click_as_failure(
        tmp_path, monkeypatch):
    printed = []
    monkeypatch.setattr(noc_metric, 'print_log',
                        lambda msg, **kwargs: printed.append(msg))
    metric = NoCMetric(output_dir=str(tmp_path))
    metric.process(
        {},
        [
            record('D', None, [0.5, 0.86, 0.96]),  # 0.9 and 0.95 at click 3
            record('D', None, [0.5, 0.96, 0.96]),  # 0.95 at click 2
            record('D', None, [0.5, 0.6, 0.7]),  # never
        ])
    metrics = metric.compute_metrics(metric.results)
    # The budget is 3 clicks: reaching a threshold at click 3 fails.
    assert metrics['D/NoF85'] == 1
    assert metrics['D/NoF90'] == 2
    assert metrics['D/NoF95'] == 2
    row = next(line for line in printed[0].splitlines() if '| D ' in line)
    cells = [cell.strip() for cell in row.strip('|').split('|')]
    assert cells[5:8] == ['1', '2', '2']  # NoF85, NoF90, NoF95
    content = json.loads((tmp_path / 'results.json').read_text())
    assert content['summary']['D']['NoF95'] == 2


def test_the_protocol_titles_the_tables_and_is_saved(tmp_path, monkeypatch):
    printed = []
    monkeypatch.setattr(noc_metric, 'print_log',
                        lambda msg, **kwargs: printed.append(msg))
    metric = NoCMetric(output_dir=str(tmp_path))
    boxed = dict(record('GrabCut', None, [0.8, 0.9]), first_prompt='box')
    boxed['objects'][0].update(box=[1, 2, 30, 40], clicks=[[5, 6, 1]])
    metric.process({}, [boxed])
    metric.compute_metrics(metric.results)
    assert 'box first' in printed[0]
    content = json.loads((tmp_path / 'results.json').read_text())
    assert content['first_prompt'] == 'box'
    assert content['samples'][0]['box'] == [1, 2, 30, 40]
    mixed = NoCMetric()
    mixed.process({}, [boxed, record('GrabCut', None, [0.8, 0.9])])
    with pytest.raises(ValueError, match='click-first and the box-first'):
        mixed.compute_metrics(mixed.results)
