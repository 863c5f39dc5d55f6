# Copyright (c) samref contributors. All rights reserved.
"""tools/analysis_tools/benchmark_app.py on a small run."""
import pytest

from testing_utils import CONFIG_DIR, load_script

SAMREF_TINY = str(CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py')


@pytest.mark.parametrize('options', [['--client', 'http', '--phases'],
                                     ['--client', 'gradio_client', '--view']])
def test_round_trips_of_isolated_sessions(options):
    pytest.importorskip(
        'gradio',
        reason='gradio is optional: '
        'pip install -r requirements/optional.txt')
    result = load_script('tools/analysis_tools/benchmark_app.py').main([
        SAMREF_TINY, '--clicks', '3', '--clicks-per-object', '2', '--users',
        '2', '--size', '96', '128'
    ] + options)
    assert result['mismatches'] == 0
    header, one, two = result['rows']
    assert one[:2] == ['1', 3] and two[:2] == ['2', 6]
    for row in (one, two):
        trip, p95, model, ratio = (float(v) for v in row[2:6])
        assert 0 < model <= trip <= p95 and ratio == pytest.approx(
            trip / model, rel=0.1)  # of the rounded cells
    if '--phases' in options:
        assert header[6:] == [
            'server: queue wait median / p95 (ms)', 'callback median (ms)',
            'postprocess median (ms)', 'server median (ms)'
        ]
        for row in (one, two):
            wait, p95 = (float(v) for v in row[6].split(' / '))
            callback, server = float(row[7]), float(row[9])
            # the server's part of a click holds the model's time and is
            # part of the round trip
            assert wait <= p95 and float(row[4]) <= callback + 1
            assert callback <= server <= float(row[2]) + 1
    else:
        assert len(header) == 6
    assert 0 < result['no_op'] < 10
