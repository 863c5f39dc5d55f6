# Copyright (c) samref contributors. All rights reserved.
"""The toolbox's main job on its embedded default (``make demo``).

1. Generates a small dataset of pictures with several overlapping objects,
   thin structures, holes and distractors (``samref.datasets.synthetic``).
2. Trains a tiny model from random weights in the paper's two stages:
   stage 1 SAM (encoder and decoder, there being no pretrained weights),
   stage 2 SAM-REF's GlobalDiff and PatchDiff refiners with SAM frozen.
3. Evaluates SAM and SAM-REF with the interactive protocol (20 clicks per
   object), prints them side by side, plots mIoU per click and draws a few
   objects after clicks 1, 3 and 5 of each model.

Everything is written under ``--work-dir`` (default ``work_dirs/demo``).
Seeded: two runs on the same machine print the same table.
"""
import argparse
import os
import os.path as osp
import time
from typing import List, Optional

import mmcv

from samref.apis.demo_steps import (SHOW_CLICKS, STAGE1, STAGE2, make_shapes,
                                    plot_summaries, print_table, read_summary,
                                    run, train_stage1, train_stage2)
from samref.visualization import draw_panel_grid


def compare_pictures(show_dirs: dict, out_file: str) -> Optional[str]:
    """Stack each shown object's per-click picture of every model, one
    model under the other, into one picture.

    Args:
        show_dirs (dict[str, str]): Model title to its ``show_dir``.
        out_file (str): The PNG to write.

    Returns:
        str | None: ``out_file``, or None when no object was drawn.
    """
    names = sorted(
        set.intersection(*[
            set(n for n in os.listdir(d) if n.endswith('.png'))
            for d in show_dirs.values()
        ]))
    if not names:
        return None
    rows = [[mmcv.imread(osp.join(d, name), channel_order='rgb')]
            for name in names for d in show_dirs.values()]
    titles = [title for _ in names for title in show_dirs]
    grid = draw_panel_grid(rows, row_titles=titles)
    mmcv.imwrite(mmcv.rgb2bgr(grid), out_file)
    return out_file


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the job.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        dict: The summaries of SAM and SAM-REF.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--stage1-iters',
        type=int,
        help='training iterations of stage 1 (default: the config\'s)')
    parser.add_argument(
        '--stage2-iters',
        type=int,
        help='training iterations of stage 2 (default: the config\'s)')
    parser.add_argument(
        '--train-images',
        type=int,
        default=240,
        help='generated training pictures (several objects each)')
    parser.add_argument(
        '--val-images',
        type=int,
        default=30,
        help='generated validation pictures (several objects each)')
    parser.add_argument(
        '--show',
        type=int,
        default=4,
        help='objects drawn after clicks 1, 3 and 5 of each model')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print('[1/5] generating the pictures', flush=True)
    data_options = make_shapes(args.work_dir, args.train_images,
                               args.val_images)
    print('[2/5] stage 1: training SAM from random weights', flush=True)
    ckpt1 = train_stage1(args.work_dir, data_options, args.stage1_iters)
    print(
        '[3/5] stage 2: training SAM-REF\'s refiners, SAM frozen', flush=True)
    ckpt2 = train_stage2(args.work_dir, data_options, ckpt1, args.stage2_iters)
    print('[4/5] interactive evaluation, 20 clicks per object', flush=True)
    summaries, show_dirs = {}, {}
    for title, config, ckpt in (('SAM', STAGE1, ckpt1), ('SAM-REF', STAGE2,
                                                         ckpt2)):
        out = osp.join(args.work_dir, f'eval_{title.lower()}')
        show_dirs[title] = osp.join(out, 'clicks')
        run(config,
            out,
            data_options,
            title,
            test=True,
            checkpoint=ckpt,
            show_dir=show_dirs[title] if args.show else None,
            show_num=args.show)
        summaries[title] = read_summary(out)
    num_objects = summaries['SAM']['num_objects']
    print(f'\nGenerated shapes, {num_objects} objects, a tiny model trained '
          'here from random weights:')
    print_table(summaries)
    print('[5/5] pictures', flush=True)
    plot = plot_summaries(summaries,
                          osp.join(args.work_dir, 'miou_sam_vs_samref.png'),
                          'Generated shapes: mIoU per click')
    print(f'mIoU per click: {plot}')
    if args.show:
        picture = compare_pictures(
            show_dirs, osp.join(args.work_dir, 'sam_vs_samref_clicks.png'))
        shown = ', '.join(map(str, SHOW_CLICKS))
        print(f'SAM and SAM-REF after clicks {shown} (green: positive, red: '
              f'negative, dashed: PatchDiff\'s window): {picture}')
    print(f'total {time.perf_counter() - start:.0f} s')
    return summaries


if __name__ == '__main__':
    main()
