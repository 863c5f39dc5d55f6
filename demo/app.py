# Copyright (c) samref contributors. All rights reserved.
"""Click on your own picture with any samref model, in the browser.

A Gradio app over :mod:`samref.apis`::

    python demo/app.py configs/demo/samref_tiny_256_stage2.py
    python demo/app.py configs/sam/sam_vit-b.py \\
        checkpoints/sam_vit_b_01ec64.pth --device cuda:0

Without a checkpoint it loads the one ``make demo`` trained for the
config's model (``work_dirs/demo/stage1`` for SAM, ``stage2`` for SAM-REF)
when it exists and fits, and random weights otherwise, with a banner saying
which. The server listens on 127.0.0.1 only.
"""
import argparse
import json
import logging
import os
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from samref.apis import (ClickResult, InteractivePredictor, InteractiveSession,
                         init_model)
from samref.datasets.synthetic import draw_sample
from samref.models.segmentors import BaseInteractiveSegmentor, SAMRef
from samref.utils import ImageFileError, format_key_report, read_image_size
from samref.visualization import draw_interaction, draw_panel_grid

MAX_SIDE = 4096  # pixels, longest side of an uploaded image
MAX_FILE_MB = 20  # size of an uploaded file
FORMATS = ('PNG', 'JPEG', 'BMP', 'TIFF', 'WEBP')  # PIL's names
DISPLAY_SIDE = 1024  # the clickable view is drawn at most this large
STAGE_SIDE = 320  # each picture of the stage panel
DEMO_WORK_DIR = 'work_dirs/demo'
LIMITS = (f'images up to {MAX_SIDE} x {MAX_SIDE} pixels and {MAX_FILE_MB} MB '
          '(PNG, JPEG, BMP, TIFF, WebP)')
logger = logging.getLogger('samref.app')


class AppError(Exception):
    """A problem the user can fix; its message is shown as is."""


def find_demo_checkpoint(model: BaseInteractiveSegmentor,
                         work_dir: str = DEMO_WORK_DIR) -> Optional[str]:
    """The newest checkpoint ``make demo`` trained for this kind of model.

    Args:
        model (BaseInteractiveSegmentor): The model built from the config.
        work_dir (str): The demo's work folder. Defaults to
            ``work_dirs/demo``.

    Returns:
        str, optional: ``stage2/iter_*.pth`` for SAM-REF, ``stage1`` for
        other models, the highest iteration; None when there is none.
    """
    stage = osp.join(work_dir,
                     'stage2' if isinstance(model, SAMRef) else 'stage1')
    if not osp.isdir(stage):
        return None
    found = []
    for name in os.listdir(stage):
        stem, ext = osp.splitext(name)
        if ext == '.pth' and stem.startswith('iter_') and \
                stem[len('iter_'):].isdigit():
            found.append((int(stem[len('iter_'):]), osp.join(stage, name)))
    return max(found)[1] if found else None


def load_model(
    config: str,
    checkpoint: Optional[str] = None,
    device: str = 'cpu',
    demo_work_dir: str = DEMO_WORK_DIR
) -> Tuple[BaseInteractiveSegmentor, str]:
    """Build the model and say where its weights come from.

    Args:
        config (str): Model config.
        checkpoint (str, optional): Weights; None tries the demo's own.
        device (str): Device. Defaults to ``'cpu'``.
        demo_work_dir (str): Where ``make demo`` writes its checkpoints.

    Returns:
        tuple: The model and a one-line banner (Markdown).

    Raises:
        AppError: The config cannot be read or built, or the checkpoint is
            missing, unsafe or does not fit the config.
    """
    if not osp.isfile(config):
        raise AppError(f'config {config} does not exist')
    try:
        model = init_model(config, device=device)
    except Exception as error:  # any config mistake, reported in one line
        raise AppError(f'cannot build a model from {config}: '
                       f'{type(error).__name__}: {error}') from None
    name = type(model).__name__
    if checkpoint is not None:
        try:
            model = init_model(config, checkpoint, device)
        except Exception as error:  # missing, unsafe or of another model
            raise AppError(
                f'checkpoint {checkpoint} cannot be used with '
                f'{config}: {type(error).__name__}: {error}') from None
        return model, (f'{name} from `{config}` with weights `{checkpoint}` '
                       f'({format_key_report(model.checkpoint_report)}).')
    found = find_demo_checkpoint(model, demo_work_dir)
    if found is not None:
        try:
            return init_model(
                config, found, device, strict=True), (
                    f'{name} from `{config}` with the weights `make demo` '
                    f'trained: `{found}` (a tiny model trained for minutes on '
                    'generated shapes).')
        except Exception as error:
            logger.warning('%s does not fit %s (%s): random weights', found,
                           config, error)
    return model, (f'**RANDOM WEIGHTS**: no checkpoint given and none of '
                   f'`make demo` fits `{config}`, so {name}\'s masks mean '
                   'nothing. Run `make demo` or pass a checkpoint: '
                   '`python demo/app.py CONFIG CHECKPOINT`.')


def read_image(path: str) -> np.ndarray:
    """Read an uploaded picture as RGB, within the size limits.

    The format and the size are read from the header before anything is
    decoded; only :data:`FORMATS` are accepted, and every failure of the
    reader (a corrupt file, a text-chunk bomb, a truncated stream) becomes
    the message of an :class:`AppError`.

    Args:
        path (str): The uploaded file.

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB, EXIF orientation applied.

    Raises:
        AppError: Not an image of :data:`FORMATS`, too large, or it cannot
            be decoded.
    """
    name = osp.basename(path)
    size_mb = osp.getsize(path) / 2**20
    if size_mb > MAX_FILE_MB:
        raise AppError(f'{name} is {size_mb:.1f} MB; the limit is '
                       f'{MAX_FILE_MB} MB')
    try:
        width, height = read_image_size(path, name, formats=FORMATS)
    except ImageFileError as error:
        raise AppError(f'{error}; upload {LIMITS}') from None
    if max(width, height) > MAX_SIDE:
        raise AppError(f'{name} is {width} x {height} pixels; the limit is '
                       f'{MAX_SIDE} x {MAX_SIDE}')
    try:
        with Image.open(path, formats=FORMATS) as image:
            image = ImageOps.exif_transpose(image).convert('RGB')
            return np.asarray(image, dtype=np.uint8).copy()
    except Exception as error:  # noqa: BLE001 - any decoding failure
        raise AppError(f'{name} cannot be decoded: '
                       f'{type(error).__name__}: {error}') from None


def make_examples(folder: str, count: int = 3) -> List[str]:
    """Write generated shape pictures to click on.

    Args:
        folder (str): Where to write them.
        count (int): How many. Defaults to 3.

    Returns:
        list[str]: The PNG files.
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        picture, _ = draw_sample((360, 480), rng)
        path = osp.join(folder, f'shapes_{index}.png')
        mmcv.imwrite(picture, path)
        paths.append(path)
    return paths


@dataclass
class Session:
    """One user's picture: the model's interactive session on it (clicks,
    masks, finished objects) and the stage panel of each click."""
    clicks: InteractiveSession
    image: np.ndarray
    name: str
    encode_seconds: float
    panels: List[Optional[np.ndarray]] = field(default_factory=list)

    @property
    def steps(self) -> List[ClickResult]:
        """The current object's clicks and their results."""
        return self.clicks.steps

    @property
    def mask(self) -> Optional[np.ndarray]:
        """The current object's mask."""
        return self.clicks.mask

    @property
    def objects(self) -> List[np.ndarray]:
        """The finished objects' masks."""
        return self.clicks.objects


class ClickApp:
    """The app's callbacks, independent of the browser.

    Each callback takes the session (or None before an image) and returns
    the new session and what the page shows: the clickable view, a status
    line, the stage panel and its timing line.

    Args:
        model (BaseInteractiveSegmentor): Any model of the toolbox.
        banner (str): Where the weights come from (Markdown).
        examples (Sequence[str]): Example pictures.
        export_dir (str, optional): Where exported masks go; a temporary
            folder by default.
    """

    def __init__(self,
                 model: BaseInteractiveSegmentor,
                 banner: str,
                 examples: Sequence[str] = (),
                 export_dir: Optional[str] = None) -> None:
        self.model = model
        model.time_stages = True  # the timing line shows each stage
        self.banner = banner
        self.examples = list(examples)
        self.export_dir = export_dir or tempfile.mkdtemp(prefix='samref_app_')

    # ----------------------------------------------------------- drawing
    def view(self, session: Optional[Session]) -> Optional[np.ndarray]:
        """The clickable picture: the mask and clicks, at display size."""
        if session is None:
            return None
        image, scale = self.display_image(session.image)
        mask = session.mask
        if mask is not None and scale != 1:
            mask = mmcv.imresize(
                mask.astype(np.uint8),
                image.shape[1::-1],
                interpolation='nearest').astype(bool)
        clicks = [(x * scale, y * scale, p)
                  for (x, y, p) in (s.click for s in session.steps)]
        return draw_interaction(image, mask, clicks)

    @staticmethod
    def display_image(image: np.ndarray) -> Tuple[np.ndarray, float]:
        """The picture scaled to at most ``DISPLAY_SIDE`` and the scale."""
        scale = min(1.0, DISPLAY_SIDE / max(image.shape[:2]))
        if scale == 1:
            return image, 1.0
        small = mmcv.imrescale(image, scale, interpolation='area')
        return small, small.shape[1] / image.shape[1]

    def stage_panel(self, session: Session,
                    result: ClickResult) -> Optional[np.ndarray]:
        """SAM-REF's stages of a click side by side; None for other models.

        SAM's coarse mask, GlobalDiff's error map (``Me > 0``) and detail
        map (``Md > 0``), and the final mask with the PatchDiff window.
        """
        interaction = result.interaction
        if interaction.global_refinement is None:
            return None
        to_mask = session.clicks.original_mask
        global_out = interaction.global_refinement
        mask, box = result.mask, result.window
        image, scale = self.display_image(session.image)
        clicks = [(x * scale, y * scale, p)
                  for (x, y, p) in (s.click for s in session.steps)]

        def shrink(m: np.ndarray) -> np.ndarray:
            return mmcv.imresize(
                m.astype(np.uint8),
                image.shape[1::-1],
                interpolation='nearest').astype(bool)

        branch = (interaction.branch or [None])[0]
        views = [
            ('SAM coarse', to_mask(interaction.coarse), None),
            ('GlobalDiff error', to_mask(global_out['error']), None),
            ('GlobalDiff detail', to_mask(global_out['detail']), None),
            ('PatchDiff window' if box is not None else
             f'final ({branch}; no PatchDiff)', mask, box),
        ]
        panels = []
        for caption, view_mask, view_box in views:
            if view_box is not None:
                view_box = tuple(v * scale for v in view_box)
            panel = draw_interaction(image, shrink(view_mask), clicks,
                                     view_box, caption)
            panels.append(
                mmcv.imrescale(panel, STAGE_SIDE / max(panel.shape[:2])))
        return draw_panel_grid([panels])

    def status(self, session: Optional[Session], note: str = '') -> str:
        """The status line (Markdown)."""
        if session is None:
            return note or ('Upload an image or pick an example; '
                            f'{LIMITS}.')
        parts = [
            f'**{session.name}** ({session.image.shape[1]} x '
            f'{session.image.shape[0]}), encoded in '
            f'{session.encode_seconds * 1e3:.0f} ms.'
        ]
        if session.steps:
            step = session.steps[-1]
            x, y, positive = step.click
            parts.append(
                f'Click {len(session.steps)} ({"+" if positive else "-"}) at '
                f'({x:.0f}, {y:.0f}): **{step.click_time * 1e3:.0f} ms**, '
                f'mask {100 * step.mask.mean():.1f} % of the picture.')
        else:
            parts.append('Click on the object.')
        if session.objects:
            parts.append(f'{len(session.objects)} object(s) done.')
        if note:
            parts.append(note)
        return ' '.join(parts)

    @staticmethod
    def stage_times(session: Optional[Session]) -> str:
        """The last click's branch and time per stage (Markdown)."""
        if session is None or not session.steps:
            return ''
        step = session.steps[-1]
        branch = (step.interaction.branch or [None])[0]
        parts = [f'branch **{branch}**'] if branch else []
        parts += [
            f'{name} {seconds * 1e3:.1f} ms'
            for name, seconds in step.interaction.stage_times.items()
        ]
        parts.append(f'whole click {step.click_time * 1e3:.1f} ms')
        return 'Stages of the last click: ' + '; '.join(parts) + '.'

    def outputs(self, session: Optional[Session], note: str = '') -> tuple:
        """``(session, view, status, stage panel, stage times)``."""
        stages = session.panels[-1] if session and session.panels else None
        return (session, self.view(session), self.status(session,
                                                         note), stages,
                self.stage_times(session))

    # --------------------------------------------------------- callbacks
    def load(self, path: Optional[str],
             session: Optional[Session]) -> Iterator[tuple]:
        """Read and encode an uploaded picture (a generator: it first says
        that it is encoding, then shows the picture).

        Args:
            path (str, optional): The uploaded file; None when cleared.
            session (Session, optional): The current session.

        Yields:
            tuple: See :meth:`outputs`.
        """
        if path is None:
            yield self.outputs(session)
            return
        try:
            image = read_image(path)
        except AppError as error:
            yield self.outputs(session, f'⚠️ {error}')
            return
        yield (session, image, f'Encoding {osp.basename(path)} '
               f'({image.shape[1]} x {image.shape[0]})...', None, '')
        predictor = InteractivePredictor(self.model)
        try:
            predictor.set_image(image, channel_order='rgb')
        except ValueError as error:
            yield self.outputs(session, f'⚠️ {error}')
            return
        session = Session(
            predictor.new_session(time_stages=True), image, osp.basename(path),
            predictor.encode_time)
        yield self.outputs(session)

    def click(self, session: Optional[Session], x: float, y: float,
              positive: bool) -> tuple:
        """Add a click at ``(x, y)`` of the picture and predict.

        Args:
            session (Session, optional): The current session.
            x (float): Column in picture pixels.
            y (float): Row in picture pixels.
            positive (bool): A positive (object) or negative click.

        Returns:
            tuple: See :meth:`outputs`.
        """
        if session is None:
            return self.outputs(None, '⚠️ Upload an image first.')
        try:
            result = session.clicks.add_click(x, y, positive)
        except ValueError as error:
            return self.outputs(session, f'⚠️ {error}')
        session.panels.append(self.stage_panel(session, result))
        return self.outputs(session)

    def select(self, session: Optional[Session], mode: str, evt: Any) -> tuple:
        """A click on the view (Gradio's select event, display pixels)."""
        if session is None:
            return self.outputs(None, '⚠️ Upload an image first.')
        _, scale = self.display_image(session.image)
        height, width = session.image.shape[:2]
        x = min(max(evt.index[0] / scale, 0), width)
        y = min(max(evt.index[1] / scale, 0), height)
        return self.click(session, x, y, mode == 'positive')

    def undo(self, session: Optional[Session]) -> tuple:
        """Take the last click back."""
        if session is not None and session.steps:
            session.clicks.undo()
            session.panels.pop()
        return self.outputs(session)

    def reset(self, session: Optional[Session]) -> tuple:
        """Take all clicks of the current object back."""
        if session is not None:
            session.clicks.reset()
            session.panels.clear()
        return self.outputs(session)

    def next_object(self, session: Optional[Session]) -> tuple:
        """Keep the current mask as a finished object and start another."""
        if session is None or session.mask is None:
            return self.outputs(session, 'No mask to keep yet.')
        session.clicks.next_object()
        session.panels.clear()
        return self.outputs(session)

    def export(self, session: Optional[Session]) -> Tuple[list, str]:
        """Write the masks: the current one as PNG, all as COCO RLE JSON.

        Returns:
            tuple: The written files and the status line.
        """
        masks = ([] if session is None else session.objects) + \
            ([session.mask] if session is not None and
             session.mask is not None else [])
        if not masks:
            return [], self.status(session, '⚠️ No mask to export yet.')
        folder = tempfile.mkdtemp(dir=self.export_dir)
        stem = osp.splitext(session.name)[0]
        png = osp.join(folder, f'{stem}_mask.png')
        mmcv.imwrite(masks[-1].astype(np.uint8) * 255, png)
        path = osp.join(folder, f'{stem}_masks_coco.json')
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(coco_annotations(masks, session.name), f)
        return [png, path], self.status(session,
                                        f'Exported {len(masks)} mask(s).')

    # ------------------------------------------------------------- page
    def build(self):
        """The Gradio page.

        Returns:
            gradio.Blocks: The app, not yet launched.
        """
        import gradio as gr
        with gr.Blocks(title='samref: click to segment') as page:
            gr.Markdown('## samref: click to segment')
            gr.Markdown(self.banner, elem_id='banner')
            session = gr.State(None)
            with gr.Row():
                with gr.Column(scale=3):
                    view = gr.Image(
                        label='Click on the object',
                        type='numpy',
                        interactive=False,
                        format='png',
                        elem_id='view')
                    status = gr.Markdown(self.status(None), elem_id='status')
                with gr.Column(scale=1):
                    upload = gr.File(
                        label=f'Upload an image ({LIMITS})',
                        type='filepath',
                        elem_id='upload')
                    if self.examples:
                        gr.Examples([[p] for p in self.examples], [upload],
                                    label='Or pick an example')
                    mode = gr.Radio(['positive', 'negative'],
                                    value='positive',
                                    label='Next click',
                                    elem_id='mode')
                    with gr.Row():
                        undo = gr.Button('Undo', elem_id='undo')
                        reset = gr.Button('Reset', elem_id='reset')
                    next_object = gr.Button('Next object', elem_id='next')
                    export = gr.Button('Export mask', elem_id='export')
                    files = gr.File(
                        label='Exported',
                        file_count='multiple',
                        interactive=False,
                        elem_id='exported')
            stages = gr.Image(
                label='Stages of the last click',
                type='numpy',
                interactive=False,
                format='png',
                show_label=False,
                visible=False,
                elem_id='stages')
            stage_times = gr.Markdown('', elem_id='stage-times')
            shown = [session, view, status, stages, stage_times]

            def to_page(result: tuple) -> tuple:
                # The stage panel shows only for models that have stages.
                state, image, line, panel, times = result
                return (state, image, line,
                        gr.Image(value=panel, visible=panel
                                 is not None), times)

            def on_upload(path, state):
                for result in self.load(path, state):
                    yield to_page(result)

            def on_select(state, next_mode, evt: gr.SelectData):
                return to_page(self.select(state, next_mode, evt))

            # a new picture: the files exported from the last one go
            upload.change(on_upload, [upload, session],
                          shown).then(lambda: None, None, files)
            view.select(on_select, [session, mode], shown)
            for button, callback in ((undo, self.undo), (reset, self.reset),
                                     (next_object, self.next_object)):
                button.click(
                    lambda state, callback=callback: to_page(callback(state)),
                    [session],
                    shown)
            export.click(self.export, [session], [files, status])
        return page


def coco_annotations(masks: Sequence[np.ndarray], file_name: str) -> dict:
    """Masks as a COCO instance file with RLE segmentations.

    Args:
        masks (Sequence[np.ndarray]): ``H x W`` bool masks of one picture.
        file_name (str): The picture's name.

    Returns:
        dict: ``images``, ``annotations`` (``segmentation`` as compressed
        RLE with ``counts`` a string), ``categories``.
    """
    height, width = masks[0].shape
    annotations = []
    for index, mask in enumerate(masks, start=1):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        annotations.append(
            dict(
                id=index,
                image_id=1,
                category_id=1,
                segmentation=dict(
                    size=[int(v) for v in rle['size']],
                    counts=rle['counts'].decode('ascii')),
                area=int(mask_utils.area(rle)),
                bbox=[float(v) for v in mask_utils.toBbox(rle)],
                iscrowd=0))
    return dict(
        images=[dict(id=1, file_name=file_name, height=height, width=width)],
        annotations=annotations,
        categories=[dict(id=1, name='object')])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='weights (default: those of make demo when they fit, else '
        'random)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument(
        '--demo-work-dir',
        default=DEMO_WORK_DIR,
        help='where make demo wrote its checkpoints')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    try:
        model, banner = load_model(args.config, args.checkpoint, args.device,
                                   args.demo_work_dir)
    except AppError as error:
        raise SystemExit(f'error: {error}') from None
    print(banner.replace('*', '').replace('`', ''))
    examples = make_examples(
        osp.join(tempfile.gettempdir(), 'samref_app_examples'))
    app = ClickApp(model, banner, examples)
    page = app.build()
    page.queue().launch(
        server_name='127.0.0.1',
        server_port=args.port,
        max_file_size=f'{MAX_FILE_MB}mb',
        allowed_paths=[osp.dirname(examples[0]), app.export_dir],
        ssr_mode=False,
        show_error=False)


if __name__ == '__main__':
    main()
