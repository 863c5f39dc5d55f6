# Copyright (c) samref contributors. All rights reserved.
"""The toolbox's main job on its embedded default (``make demo``).

1. Generates a small dataset of pictures with several overlapping objects,
   thin structures, holes and distractors (``samref.datasets.synthetic``).
2. Trains a tiny model from random weights in the paper's two stages:
   stage 1 SAM (encoder and decoder, there being no pretrained weights),
   stage 2 SAM-REF's GlobalDiff and PatchDiff refiners with SAM frozen.
3. Evaluates SAM and SAM-REF with the click protocol (20 clicks per
   object) and the box-first protocol (each object's box, then 19 clicks),
   prints them side by side, plots mIoU per interaction and draws a few
   objects after interactions 1, 3 and 5 of each model.

Everything is written under ``--work-dir`` (default ``work_dirs/demo``).
Seeded: two runs on the same machine print the same table.
"""
import argparse
import os
import os.path as osp
import time
from typing import List, Optional

import mmcv
import torch

from samref.apis.demo_steps import (SHOW_CLICKS, STAGE1, STAGE2, evaluate,
                                    make_shapes, plot_summaries, print_table,
                                    train_stage1, train_stage2)
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
        '--seed',
        type=int,
        help='random seed of both trainings (default: the configs\', 0)')
    parser.add_argument(
        '--train-processes',
        type=int,
        default=1 if torch.cuda.is_available() else 2,
        help='data-parallel training processes on the CPU (gloo), the '
        'threads shared among them (default: 2 without a GPU; 1: train in '
        'this process)')
    parser.add_argument(
        '--eval-processes',
        type=int,
        default=2,
        help='evaluations run at once, one thread each (1: one after the '
        'other with the default threads)')
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
    train_options = data_options if args.seed is None else {
        **data_options, 'randomness.seed': args.seed
    }
    ckpt1 = train_stage1(args.work_dir, train_options, args.stage1_iters,
                         args.train_processes)
    print(
        '[3/5] stage 2: training SAM-REF\'s refiners, SAM frozen', flush=True)
    ckpt2 = train_stage2(args.work_dir, train_options, ckpt1,
                         args.stage2_iters, args.train_processes)
    print(
        '[4/5] interactive evaluation, 20 interactions per object: click '
        'first, then box first',
        flush=True)
    jobs, show_dirs = {}, {'click': {}, 'box': {}}
    # SAM-REF's evaluations first: the longest jobs start at once.
    for model, config, ckpt in (('SAM-REF', STAGE2, ckpt2), ('SAM', STAGE1,
                                                             ckpt1)):
        for protocol, suffix in (('click', ''), ('box', ', box first')):
            out = osp.join(
                args.work_dir, f'eval_{model.lower()}' +
                ('_box_first' if protocol == 'box' else ''))
            show_dirs[protocol][model] = osp.join(out, 'clicks')
            jobs[model + suffix] = dict(
                config=config,
                work_dir=out,
                overrides={
                    **data_options, 'test_cfg.first_prompt': protocol
                },
                title=model + suffix,
                checkpoint=ckpt,
                show_dir=show_dirs[protocol][model] if args.show else None,
                show_num=args.show)
    done = dict(zip(jobs, evaluate(list(jobs.values()), args.eval_processes)))
    summaries = {
        title: done[title]
        for title in ('SAM', 'SAM-REF', 'SAM, box first', 'SAM-REF, box first')
    }
    num_objects = summaries['SAM']['num_objects']
    print(f'\nGenerated shapes, {num_objects} objects, a tiny model trained '
          'here from random weights:')
    print_table(summaries)
    print('(box first: interaction 1 is the object\'s box, 2-20 clicks; NoC '
          'and k-mIoU count interactions)')
    print('[5/5] pictures', flush=True)
    plot = plot_summaries(summaries,
                          osp.join(args.work_dir, 'miou_sam_vs_samref.png'),
                          'Generated shapes: mIoU per interaction')
    print(f'mIoU per interaction: {plot}')
    if args.show:
        shown = ', '.join(map(str, SHOW_CLICKS))
        for protocol, name in (('click', 'clicks'), ('box', 'box_first')):
            picture = compare_pictures(
                show_dirs[protocol],
                osp.join(args.work_dir, f'sam_vs_samref_{name}.png'))
            print(f'SAM and SAM-REF after interactions {shown}, {protocol} '
                  'first (green: positive click and box, red: negative, '
                  f'dashed: PatchDiff\'s window): {picture}')
    print(f'total {time.perf_counter() - start:.0f} s')
    return summaries


if __name__ == '__main__':
    main()
