# Copyright (c) samref contributors. All rights reserved.
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def read_training_scalars(work_dir: str) -> List[dict]:
    """The logged training scalars of the newest run in a work dir.

    mmengine's ``LocalVisBackend`` writes one JSON object per logging step
    (``step``, ``lr``, ``loss``, each ``loss_*`` term, ...) to
    ``<work_dir>/<timestamp>/vis_data/scalars.json``.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        list[dict]: The training records (those with a ``loss``), in order.

    Raises:
        FileNotFoundError: ``work_dir`` holds no ``scalars.json``.
    """
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(
            f'no <timestamp>/vis_data/scalars.json under {work_dir}; was the '
            'run trained with a LocalVisBackend?')
    with open(files[-1], encoding='utf-8') as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if 'loss' in r]


def plot_loss_curves(runs: Dict[str, Sequence[dict]],
                     out_file: str,
                     title: Optional[str] = None) -> str:
    """Plot every ``loss_*`` term against the iteration, one panel per run.

    Args:
        runs (dict[str, Sequence[dict]]): Panel title to the run's records
            (:func:`read_training_scalars`).
        out_file (str): The PNG to write.
        title (str, optional): Figure title.

    Returns:
        str: ``out_file``.
    """
    if not runs or not all(runs.values()):
        raise ValueError('every run needs at least one logged record')
    fig = Figure(figsize=(5 * len(runs), 3.6), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (name, records) in zip(axes, runs.items()):
        terms = sorted(
            {k
             for r in records
             for k in r if k.startswith('loss_')})
        for term in terms:
            points = [(r['step'], r[term]) for r in records if term in r]
            ax.plot(*zip(*points), label=term[5:])
        ax.set_xlabel('iteration')
        ax.set_ylabel('loss')
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc='best', fontsize='small')
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    return out_file
