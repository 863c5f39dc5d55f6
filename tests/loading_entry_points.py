# Copyright (c) samref contributors. All rights reserved.
"""Feed files to every entry point that loads one, in this process.

    python tests/loading_entry_points.py SPEC.json

``SPEC.json`` lists ``[entry, file]`` pairs; each entry point is called as
a user calls it, the command-line tools through their ``__main__``.
``SPEC.json.out`` gets one JSON line per pair, the error that ended the
call (``null`` when it returned), then a last line with the megabytes the
process's peak memory grew by. A file that crashes the process ends the run
with a signal, so the caller sees which pair did it: the first one not
reported.
"""
import json
import os
import os.path as osp
import resource
import runpy
import sys
import tempfile
from typing import Callable, Dict, List

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO_ROOT, 'configs')
SAM_TINY = osp.join(CONFIGS, 'sam', 'sam_vit-tiny.py')
FOCSAM_TINY = osp.join(CONFIGS, 'focsam', 'focsam_vit-tiny.py')
STAGE2 = osp.join(CONFIGS, 'demo', 'samref_tiny_256_stage2.py')
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def run_script(path: str, *args: str) -> None:
    """Run a script's ``__main__`` with these command-line arguments."""
    argv = sys.argv
    sys.argv = [path, *args]
    try:
        runpy.run_path(path, run_name='__main__')
    finally:
        sys.argv = argv


def run_module(path: str, name: str) -> Callable:
    """A function of a script, loaded without running its ``__main__``."""
    return runpy.run_path(path)[name]


def entry_points(work: str, shapes: str) -> Dict[str, Callable[[str], None]]:
    """What each entry point does with a file; ``shapes`` is a dataset in
    the COCO-MVal layout for the tools."""
    tools = osp.join(REPO_ROOT, 'tools')

    def init_model(path: str) -> None:
        from samref.apis import init_model
        init_model(SAM_TINY, path)

    def test_script(path: str) -> None:
        run_script(
            osp.join(tools, 'test.py'), SAM_TINY, path, '--datasets',
            f'coco-mval={shapes}', '--num-clicks', '1', '--work-dir',
            osp.join(work,
                     'test'), '--cfg-options', 'test_dataloader.num_workers=0')

    def train(path: str, *resume: str) -> None:
        run_script(
            osp.join(tools, 'train.py'), STAGE2, *resume, '--work-dir',
            osp.join(work, 'train'), '--cfg-options', f'load_from={path}',
            f'train_dataloader.dataset.data_root={shapes}',
            'train_dataloader.num_workers=0', 'train_dataloader.batch_size=1',
            'train_cfg.max_iters=1', *NO_VALIDATION)

    def app_checkpoint(path: str) -> None:
        load_model = run_module(
            osp.join(REPO_ROOT, 'demo', 'app.py'), 'load_model')
        load_model(SAM_TINY, path)

    def app_upload(path: str) -> None:
        read_image = run_module(
            osp.join(REPO_ROOT, 'demo', 'app.py'), 'read_image')
        read_image(path)

    def focsam_converter(path: str) -> None:
        run_script(
            osp.join(tools, 'model_converters', 'focsam2samref.py'), path,
            osp.join(work, 'converted.pth'), '--config', FOCSAM_TINY)

    def dataset(path: str) -> None:
        # The file replaces the first picture of the dataset.
        images = osp.join(shapes, 'img')
        first = sorted(os.listdir(images))[0]
        with open(path, 'rb') as src, \
                open(osp.join(images, first), 'wb') as dst:
            dst.write(src.read())
        test_script(osp.join(work, 'sam_tiny.pth'))

    def click_demo(path: str) -> None:
        run_script(
            osp.join(REPO_ROOT, 'demo', 'sam_click_demo.py'), '--config',
            SAM_TINY, '--image', path, '--clicks', '1,1,1', '--out',
            osp.join(work, 'click.png'))

    def read_image(path: str) -> None:
        from samref.utils import read_image
        read_image(path)

    return dict(
        init_model=init_model,
        test_script=test_script,
        train_load_from=train,
        train_resume=lambda path: train(path, '--resume'),
        app_checkpoint=app_checkpoint,
        app_upload=app_upload,
        focsam_converter=focsam_converter,
        dataset=dataset,
        click_demo=click_demo,
        read_image=read_image)


def main(spec_file: str) -> None:
    import torch

    from samref.apis import init_model
    from samref.datasets import make_shapes_dataset
    with open(spec_file, encoding='utf-8') as f:
        pairs: List[List[str]] = json.load(f)
    work = tempfile.mkdtemp()
    shapes = make_shapes_dataset(osp.join(work, 'shapes'), 2, seed=6)
    torch.manual_seed(0)
    torch.save(
        init_model(SAM_TINY).state_dict(), osp.join(work, 'sam_tiny.pth'))
    calls = entry_points(work, shapes)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    with open(spec_file + '.out', 'w', encoding='utf-8') as out:
        for entry, path in pairs:
            try:
                calls[entry](path)
                error = None
            except BaseException as caught:  # noqa: BLE001 - SystemExit too
                error = f'{type(caught).__name__}: {caught}'
            out.write(
                json.dumps(dict(entry=entry, file=path, error=error)) + '\n')
            out.flush()
        grown = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10) - peak
        out.write(json.dumps(dict(grown_mb=grown)) + '\n')


if __name__ == '__main__':
    main(sys.argv[1])
