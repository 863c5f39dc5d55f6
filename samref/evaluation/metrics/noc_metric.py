# Copyright (c) samref contributors. All rights reserved.
import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS
from terminaltables import AsciiTable

from ...visualization import plot_miou_curves
from ..functional import miou_curve, noc, nof

NOC_THRESHOLDS = (0.85, 0.90, 0.95)
PRINTED_CLICKS = (1, 3, 5, 10, 20)


def group_name(record: dict) -> str:
    """``dataset`` or ``dataset/subset``, the row a record belongs to."""
    subset = record.get('subset')
    return f'{record["dataset_name"]}/{subset}' if subset else \
        record['dataset_name']


@METRICS.register_module()
class NoCMetric(BaseMetric):
    """Interactive-segmentation metrics of the click protocol.

    From the per-image records of ``InteractiveTestLoop`` it computes, for
    every dataset (and every part of a dataset with several, e.g. the four
    of HQSeg-44K):

    - NoC@t, t = 0.85/0.90/0.95: mean over objects of the first click with
      IoU >= t, the number of clicks when never reached;
    - NoF@t: the number of objects whose NoC@t is the click budget (the
      reference code's "over max": reaching t only at the last click is a
      failure too);
    - mIoU@k for every k (printed at 1, 3, 5, 10, 20);
    - SPC: wall time of encoding and clicking divided by the clicks made,
      and the per-click time without the image encoder, plus the models'
      per-stage times and the share of clicks per branch (SAM-REF's
      selector).

    It prints the tables, titled with the protocol (``click first``, or
    ``box first`` when the loop's ``first_prompt`` is ``'box'``: every
    object starts with its box, and NoC and mIoU@k count interactions, the
    box the first), and, with ``output_dir``, writes ``results.json``
    (the protocol, per-object IoUs, clicks and box, the summary) and
    ``miou_curve.png``.

    Args:
        output_dir (str, optional): Where to write the files. Defaults to
            None (nothing written).
        label (str, optional): Name of the evaluated model in the files.
        collect_device (str): ``'cpu'`` or ``'gpu'``, for gathering results
            across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'interactive'``.
    """
    default_prefix = 'interactive'

    def __init__(self,
                 output_dir: Optional[str] = None,
                 label: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        self.label = label

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep the records of a batch of images.

        Args:
            data_batch (dict): The batch (unused).
            data_samples (Sequence[dict]): Per-image records of the loop.
        """
        self.results.extend(data_samples)

    @staticmethod
    def summarize(objects: List[dict], encode_time: float) -> Dict[str, float]:
        """Metrics of one group of objects.

        Args:
            objects (list[dict]): Per-object records.
            encode_time (float): Encoding seconds of the group's images.

        Returns:
            dict[str, float]: The metrics.
        """
        ious = np.array([obj['ious'] for obj in objects], dtype=np.float64)
        summary: Dict[str, float] = OrderedDict(num_objects=len(objects))
        for t in NOC_THRESHOLDS:
            summary[f'NoC{round(t * 100)}'] = float(noc(ious, t).mean())
        for t in NOC_THRESHOLDS:
            summary[f'NoF{round(t * 100)}'] = nof(ious, t)
        curve = miou_curve(ious)
        for k, value in enumerate(curve, start=1):
            summary[f'mIoU@{k}'] = float(value)
        clicks = sum(obj['num_clicks'] for obj in objects)
        click_time = sum(obj['click_time'] for obj in objects)
        interact_time = sum(obj['interact_time'] for obj in objects)
        summary['SPC'] = (encode_time + click_time) / max(clicks, 1)
        summary['SPC_no_encoder'] = interact_time / max(clicks, 1)
        summary['encode_time'] = encode_time
        stages: Dict[str, float] = {}
        for obj in objects:
            for name, seconds in obj['stage_times'].items():
                stages[name] = stages.get(name, 0.0) + seconds
        for name, seconds in stages.items():
            summary[f'stage_{name}'] = seconds / max(clicks, 1)
        branches = [b for obj in objects for b in obj.get('branches', []) if b]
        for name in sorted(set(branches)):
            summary[f'branch_{name}'] = branches.count(name) / len(branches)
        return summary

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Summarise, print and save the evaluation.

        Args:
            results (list[dict]): Per-image records of all ranks, in dataset
                order.

        Returns:
            dict[str, float]: ``<group>/<metric>`` for every group (the
            evaluator adds the prefix).
        """
        groups: Dict[str, List[dict]] = OrderedDict()
        encode: Dict[str, float] = {}
        for record in results:
            names = [record['dataset_name']]
            if record.get('subset'):
                names.append(group_name(record))
            for name in names:
                groups.setdefault(name, []).extend(record['objects'])
                encode[name] = encode.get(name, 0.0) + record['encode_time']
        summaries = OrderedDict((name, self.summarize(objects, encode[name]))
                                for name, objects in groups.items())
        protocols = sorted({r.get('first_prompt', 'click') for r in results})
        if len(protocols) > 1:
            raise ValueError('NoCMetric got records of the click-first and '
                             'the box-first protocol in one evaluation')
        protocol = protocols[0] if protocols else 'click'
        self.print_tables(summaries, f'{protocol} first')
        if self.output_dir:
            self.save(results, summaries, protocol)
        return {
            f'{name}/{key}': value
            for name, summary in summaries.items()
            for key, value in summary.items()
        }

    @staticmethod
    def print_tables(summaries: Dict[str, Dict[str, float]],
                     protocol: Optional[str] = None) -> None:
        """Print the summary, mIoU and timing tables, titled with the
        protocol."""
        main = [[
            'Dataset', '#Obj', 'NoC85', 'NoC90', 'NoC95', 'NoF85', 'NoF90',
            'NoF95', '1-mIoU', '5-mIoU', '20-mIoU', 'SPC (s)'
        ]]
        curve = [['Dataset'] + [f'mIoU@{k}' for k in PRINTED_CLICKS]]
        timing = [[
            'Dataset', 'SPC (s)', 'SPC w/o encoder (ms)', 'encoder total (s)'
        ]]

        def keys(prefix):
            return sorted({
                key[len(prefix):]
                for summary in summaries.values()
                for key in summary if key.startswith(prefix)
            })

        stage_names, branch_names = keys('stage_'), keys('branch_')
        timing[0] += [f'{name} (ms)' for name in stage_names]
        timing[0] += [f'{name} clicks (%)' for name in branch_names]

        def miou(summary, k):
            value = summary.get(f'mIoU@{k}')
            return '-' if value is None else f'{100 * value:.2f}'

        for name, s in summaries.items():
            main.append([
                name, s['num_objects'], f'{s["NoC85"]:.2f}',
                f'{s["NoC90"]:.2f}', f'{s["NoC95"]:.2f}', s['NoF85'],
                s['NoF90'], s['NoF95'],
                miou(s, 1),
                miou(s, 5),
                miou(s, 20), f'{s["SPC"]:.3f}'
            ])
            curve.append([name] + [miou(s, k) for k in PRINTED_CLICKS])
            timing.append([
                name, f'{s["SPC"]:.3f}', f'{1e3 * s["SPC_no_encoder"]:.1f}',
                f'{s["encode_time"]:.2f}'
            ] + [
                f'{1e3 * s.get("stage_" + stage, 0.0):.1f}'
                for stage in stage_names
            ] + [
                f'{100 * s.get("branch_" + branch, 0.0):.1f}'
                for branch in branch_names
            ])
        for rows in (main, curve, timing):
            print_log(
                '\n' + AsciiTable(rows, protocol).table, logger='current')

    def save(self,
             results: List[dict],
             summaries: Dict[str, Dict[str, float]],
             protocol: str = 'click') -> None:
        """Write ``results.json`` and ``miou_curve.png`` to ``output_dir``.

        ``results.json`` is written to a temporary file and moved into place,
        so an interrupted run never leaves a truncated file.
        """
        os.makedirs(self.output_dir, exist_ok=True)
        samples = [
            dict(
                dataset=record['dataset_name'],
                subset=record.get('subset'),
                img_path=record['img_path'],
                object=obj['index'],
                ious=obj['ious'],
                clicks=obj['clicks'],
                box=obj.get('box'),
                branches=obj.get('branches')) for record in results
            for obj in record['objects']
        ]
        content = dict(
            label=self.label,
            first_prompt=protocol,
            num_clicks=len(samples[0]['ious']) if samples else 0,
            summary=summaries,
            samples=samples)
        path = osp.join(self.output_dir, 'results.json')
        handle, tmp = tempfile.mkstemp(dir=self.output_dir, suffix='.tmp')
        with os.fdopen(handle, 'w', encoding='utf-8') as f:
            json.dump(content, f)
        os.replace(tmp, path)
        clicks = range(1, content['num_clicks'] + 1)
        curves = OrderedDict((f'{name} ({s["num_objects"]} objects)',
                              [s[f'mIoU@{k}'] for k in clicks])
                             for name, s in summaries.items())
        plot = plot_miou_curves(
            curves, osp.join(self.output_dir, 'miou_curve.png'), self.label,
            'number of clicks'
            if protocol == 'click' else 'interactions (the box, then clicks)')
        print_log(
            f'results written to {path}, mIoU curve to {plot}',
            logger='current')
