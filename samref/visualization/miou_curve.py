# Copyright (c) samref contributors. All rights reserved.
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_miou_curves(curves: Dict[str, Sequence[float]],
                     out_file: str,
                     title: Optional[str] = None,
                     xlabel: str = 'number of clicks') -> str:
    """Plot mIoU against the number of clicks, one curve per entry.

    Args:
        curves (dict[str, Sequence[float]]): Label to mIoU after clicks
            1..K (values in [0, 1]).
        out_file (str): The PNG to write.
        title (str, optional): Figure title.
        xlabel (str): The x axis' label. Defaults to
            ``'number of clicks'``.

    Returns:
        str: ``out_file``.
    """
    if not curves:
        raise ValueError('no mIoU curve to plot')
    # A figure with its own Agg canvas: writes the PNG on any machine
    # without touching pyplot's global backend or figure list.
    fig = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, values in curves.items():
        clicks = range(1, len(values) + 1)
        ax.plot(
            clicks, [100 * v for v in values], marker='o', ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel('mIoU (%)')
    # The whole 0-100 range, so that a flat curve reads as flat.
    ax.set_ylim(0, 100)
    longest = max(len(v) for v in curves.values())
    ax.set_xticks(range(1, longest + 1, max(1, longest // 10)))
    ax.grid(alpha=0.3)
    ax.legend(loc='best', fontsize='small')
    if title:
        ax.set_title(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    return out_file
