# Copyright (c) samref contributors. All rights reserved.
"""Training on real pictures (``make demo-real``): COCO-MVal to GrabCut.

1. Takes the SAM and SAM-REF's refiners that ``make demo`` trained on the
   generated shapes (and trains them first, the same way, when their
   checkpoints are missing).
2. Trains SAM further on the real COCO-MVal copy (stage 1), then SAM-REF's
   refiners, starting from the shapes-trained ones, on it with SAM frozen
   (stage 2).
3. Evaluates the shapes-only SAM, the SAM trained on COCO-MVal and SAM-REF
   on the real GrabCut copy with the interactive protocol (20 clicks per
   object), prints them side by side and plots mIoU per click and the
   training losses of both stages.

Everything is written under ``--work-dir`` (default ``work_dirs/demo_real``).
"""
import argparse
import os.path as osp
import time
from typing import List, Optional

from mmengine.config import Config

from samref.apis.demo_steps import (make_shapes, plot_summaries, print_table,
                                    read_summary, run, schedule_options, train,
                                    train_stage1, train_stage2)
from samref.visualization import plot_loss_curves, read_training_scalars

SAM_CONFIG = 'configs/demo/sam_tiny_256_coco-mval.py'
SAMREF_CONFIG = 'configs/demo/samref_tiny_256_coco-mval.py'


def data_options(config: str, coco_mval: Optional[str],
                 grabcut: Optional[str]) -> dict:
    """Overrides of the data roots, each checked to exist.

    Args:
        config (str): The config whose roots are the defaults.
        coco_mval (str, optional): COCO-MVal root (``img/``, ``gt/``).
        grabcut (str, optional): GrabCut root (``data_GT/``,
            ``boundary_GT/``).

    Returns:
        dict: ``--cfg-options`` style overrides.

    Raises:
        FileNotFoundError: A root is not a folder.
    """
    cfg = Config.fromfile(config)
    roots = {
        'train_dataloader.dataset.data_root':
        coco_mval or cfg.train_dataloader.dataset.data_root,
        'test_dataloader.dataset.data_root':
        grabcut or cfg.test_dataloader.dataset.data_root,
    }
    for key, root in roots.items():
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'{key} = {root!r} is not a folder; pass --coco-mval / '
                '--grabcut with the real copies')
    return roots


def refiner_init_options(checkpoint: str) -> dict:
    """Overrides of the checkpoint both refiners start from.

    The config's ``init_cfg`` of each refiner loads it (``Pretrained``, by
    prefix); only the path changes.

    Args:
        checkpoint (str): A SAM-REF checkpoint (``global_refiner.*`` and
            ``patch_refiner.*`` keys).

    Returns:
        dict: ``--cfg-options`` style overrides.
    """
    return {
        f'model.{name}.init_cfg.checkpoint': checkpoint
        for name in ('global_refiner', 'patch_refiner')
    }


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the job.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        dict: The GrabCut summaries of the three models.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo_real')
    parser.add_argument(
        '--shapes-checkpoint',
        default='work_dirs/demo/stage1/iter_600.pth',
        help='the SAM that make demo trained on the generated shapes '
        '(trained here first when missing)')
    parser.add_argument(
        '--shapes-refiners',
        default='work_dirs/demo/stage2/iter_600.pth',
        help='the SAM-REF that make demo trained on the generated shapes, '
        'whose refiners stage 2 starts from (trained here first when '
        'missing)')
    parser.add_argument('--coco-mval', help='COCO-MVal root (training)')
    parser.add_argument('--grabcut', help='GrabCut root (evaluation)')
    parser.add_argument(
        '--stage1-iters',
        type=int,
        help='iterations of SAM on COCO-MVal (default: the config\'s)')
    parser.add_argument(
        '--stage2-iters',
        type=int,
        help='iterations of SAM-REF on COCO-MVal (default: the config\'s)')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = data_options(SAM_CONFIG, args.coco_mval, args.grabcut)
    shapes_ckpt = args.shapes_checkpoint
    print(
        f'[1/5] the SAM trained on the generated shapes: {shapes_ckpt}',
        flush=True)
    shapes_refiners = args.shapes_refiners
    shapes_dir = osp.join(args.work_dir, 'shapes_demo')
    if not osp.isfile(shapes_ckpt):
        print('  missing, so training it as make demo does', flush=True)
        shapes_ckpt = train_stage1(shapes_dir, make_shapes(shapes_dir))
    print(f'  and its refiners: {shapes_refiners}', flush=True)
    if not osp.isfile(shapes_refiners):
        print('  missing, so training them as make demo does', flush=True)
        shapes_refiners = train_stage2(shapes_dir, make_shapes(shapes_dir),
                                       shapes_ckpt)
    sam_dir = osp.join(args.work_dir, 'sam')
    samref_dir = osp.join(args.work_dir, 'samref')
    print('[2/5] stage 1: SAM on COCO-MVal', flush=True)
    sam_ckpt = train(
        SAM_CONFIG, sam_dir, 'SAM', {
            **data,
            **schedule_options(SAM_CONFIG, args.stage1_iters), 'load_from':
            shapes_ckpt
        })
    print(
        '[3/5] stage 2: SAM-REF\'s refiners on COCO-MVal, SAM frozen',
        flush=True)
    samref_ckpt = train(
        SAMREF_CONFIG, samref_dir, 'SAM-REF', {
            **data,
            **schedule_options(SAMREF_CONFIG, args.stage2_iters), 'load_from':
            sam_ckpt,
            **refiner_init_options(shapes_refiners)
        })
    print(
        '[4/5] interactive evaluation on GrabCut, 20 clicks per object',
        flush=True)
    models = (
        ('SAM (shapes only)', SAM_CONFIG, shapes_ckpt, 'eval_sam_shapes'),
        ('SAM', SAM_CONFIG, sam_ckpt, 'eval_sam'),
        ('SAM-REF', SAMREF_CONFIG, samref_ckpt, 'eval_sam-ref'),
    )
    summaries = {}
    for title, config, ckpt, folder in models:
        out = osp.join(args.work_dir, folder)
        run(config, out, data, title, test=True, checkpoint=ckpt)
        summaries[title] = read_summary(out, 'GrabCut')
    num_objects = summaries['SAM']['num_objects']
    print(f'\nReal GrabCut, {num_objects} objects, tiny models trained here '
          'on the real COCO-MVal copy:')
    print_table(summaries)
    print('[5/5] plots', flush=True)
    plot = plot_summaries(summaries, osp.join(args.work_dir,
                                              'miou_grabcut.png'),
                          'GrabCut: mIoU per click (trained on COCO-MVal)')
    print(f'mIoU per click: {plot}')
    losses = plot_loss_curves(
        {
            'stage 1: SAM on COCO-MVal': read_training_scalars(sam_dir),
            'stage 2: SAM-REF on COCO-MVal': read_training_scalars(samref_dir)
        }, osp.join(args.work_dir, 'loss_curves.png'))
    print(f'training losses: {losses}')
    print(f'total {time.perf_counter() - start:.0f} s')
    return summaries


if __name__ == '__main__':
    main()
