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

On the page a left click is positive, a right click (or a click with Shift
held) negative; ``z`` (or Ctrl+Z) undoes, ``n`` starts the next object.
Scripts click through the ``/click`` endpoint (``x``, ``y``, ``label``
and ``view``) after an ``/upload``, with
:class:`samref.apis.app_client.AppClient` (Gradio's HTTP API) or
``gradio_client``.
"""
import argparse
import json
import logging
import math
import numbers
import os
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import DictAction
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from samref.apis import (ClickResult, InteractivePredictor, InteractiveSession,
                         init_model, load_weights)
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
KEYS_HELP = ('Left click: positive; right click or Shift+click: negative; '
             '`z` or Ctrl+Z: undo; `n`: next object.')
# Mouse and keys of the page, added to its <head>. A right click on the
# view is replayed as a Shift+click at the same place; every click on the
# view records in `samrefNegativeClick` whether Shift was held, which
# NEGATIVE_CLICK_JS reads before the click is sent. The keys press the
# page's buttons, except while a text field has the focus.
PAGE_SCRIPT = """
<script>
(() => {
  window.samrefNegativeClick = false;
  document.addEventListener('contextmenu', (event) => {
    const image = event.target.closest && event.target.closest('#view img');
    if (!image) return;
    event.preventDefault();
    image.dispatchEvent(new MouseEvent('click', {
      bubbles: true, cancelable: true, shiftKey: true,
      clientX: event.clientX, clientY: event.clientY}));
  });
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('#view')) {
      window.samrefNegativeClick = event.shiftKey;
    }
  }, true);
  const buttons = {z: 'undo', n: 'next'};
  const typing = 'textarea, [contenteditable], input:not([type=radio])' +
    ':not([type=checkbox]):not([type=file]):not([type=button])';
  document.addEventListener('keydown', (event) => {
    const id = buttons[event.key.toLowerCase()];
    const modified = event.altKey || event.metaKey ||
      (event.ctrlKey && id !== 'undo');
    if (!id || modified || event.repeat ||
        (event.target.closest && event.target.closest(typing))) return;
    const button = document.getElementById(id);
    if (button) {
      event.preventDefault();
      button.click();
    }
  });
})();
</script>
"""
# Runs in the page before a click on the view is sent: the inputs
# (session, mode, show_stages), with the mode negative for a right click or
# a Shift+click.
NEGATIVE_CLICK_JS = """(session, mode, showStages) => {
  const negative = window.samrefNegativeClick === true;
  window.samrefNegativeClick = false;
  return [session, negative ? 'negative' : mode, showStages];
}"""
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
    demo_work_dir: str = DEMO_WORK_DIR,
    cfg_options: Optional[dict] = None
) -> Tuple[BaseInteractiveSegmentor, str]:
    """Build the model and say where its weights come from.

    Args:
        config (str): Model config.
        checkpoint (str, optional): Weights; None tries the demo's own.
        device (str): Device. Defaults to ``'cpu'``.
        demo_work_dir (str): Where ``make demo`` writes its checkpoints.
        cfg_options (dict, optional): Overrides merged into the config,
            e.g. ``{'model.refiner_dtype': 'auto'}``.

    Returns:
        tuple: The model and a one-line banner (Markdown).

    Raises:
        AppError: The config cannot be read or built, or the checkpoint is
            missing, unsafe or does not fit the config.
    """
    if not osp.isfile(config):
        raise AppError(f'config {config} does not exist')
    try:
        model = init_model(config, device=device, cfg_options=cfg_options)
    except Exception as error:  # any config mistake, reported in one line
        raise AppError(f'cannot build a model from {config}: '
                       f'{type(error).__name__}: {error}') from None
    name = type(model).__name__
    if checkpoint is not None:
        try:
            load_weights(model, checkpoint)
        except Exception as error:  # missing, unsafe or of another model
            raise AppError(
                f'checkpoint {checkpoint} cannot be used with '
                f'{config}: {type(error).__name__}: {error}') from None
        return model, (f'{name} from `{config}` with weights `{checkpoint}` '
                       f'({format_key_report(model.checkpoint_report)}).')
    found = find_demo_checkpoint(model, demo_work_dir)
    if found is not None:
        try:
            load_weights(model, found, strict=True)
        except Exception as error:
            logger.warning('%s does not fit %s (%s): random weights', found,
                           config, error)
        else:
            return model, (
                f'{name} from `{config}` with the weights `make demo` '
                f'trained: `{found}` (a tiny model trained for minutes on '
                'generated shapes).')
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
    masks, finished objects) and the picture at display size, which the
    view is drawn on at every click.

    Attributes:
        clicks (InteractiveSession): The model's session on the picture.
        image (np.ndarray): ``H x W x 3`` uint8 RGB picture.
        name (str): Its file name.
        encode_seconds (float): Seconds to encode it.
        display (np.ndarray): The picture scaled to at most
            :data:`DISPLAY_SIDE` pixels.
        scale (float): Display pixels per picture pixel.
    """
    clicks: InteractiveSession
    image: np.ndarray
    name: str
    encode_seconds: float
    display: np.ndarray
    scale: float

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
    line, the stage panel and its timing line. The view is redrawn at every
    click on the session's display-size picture; SAM-REF's stage panel only
    when asked for (``show_stages``). Callbacks of different sessions may
    run at the same time: a click changes its session only, and the model
    only reads its weights (its ``time_stages`` is set once, here).

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
        mask = session.mask
        if mask is not None and session.scale != 1:
            mask = self.display_mask(session, mask)
        return draw_interaction(session.display, mask,
                                self.display_clicks(session))

    @staticmethod
    def display_image(image: np.ndarray) -> Tuple[np.ndarray, float]:
        """The picture scaled to at most ``DISPLAY_SIDE`` and the scale."""
        scale = min(1.0, DISPLAY_SIDE / max(image.shape[:2]))
        if scale == 1:
            return image, 1.0
        small = mmcv.imrescale(image, scale, interpolation='area')
        return small, small.shape[1] / image.shape[1]

    @staticmethod
    def display_mask(session: Session, mask: np.ndarray) -> np.ndarray:
        """A mask of the picture at the display size (nearest pixels)."""
        return cv2.resize(
            mask.astype(np.uint8),
            session.display.shape[1::-1],
            interpolation=cv2.INTER_NEAREST).astype(bool)

    @staticmethod
    def display_clicks(session: Session) -> List[Tuple[float, float, bool]]:
        """The current object's clicks in display pixels."""
        return [(x * session.scale, y * session.scale, positive)
                for (x, y, positive) in session.clicks.clicks]

    def stage_panel(self, session: Optional[Session]) -> Optional[np.ndarray]:
        """SAM-REF's stages of the last click side by side; None before a
        click and for other models.

        SAM's coarse mask, GlobalDiff's error map (``Me > 0``) and detail
        map (``Md > 0``), and the final mask with the PatchDiff window.
        """
        if session is None or not session.steps:
            return None
        result = session.steps[-1]
        interaction = result.interaction
        if interaction.global_refinement is None:
            return None
        to_mask = session.clicks.original_mask
        global_out = interaction.global_refinement
        box = result.window
        branch = (interaction.branch or [None])[0]
        views = [
            ('SAM coarse', to_mask(interaction.coarse), None),
            ('GlobalDiff error', to_mask(global_out['error']), None),
            ('GlobalDiff detail', to_mask(global_out['detail']), None),
            ('PatchDiff window' if box is not None else
             f'final ({branch}; no PatchDiff)', result.mask, box),
        ]
        clicks = self.display_clicks(session)
        panels = []
        for caption, view_mask, view_box in views:
            if view_box is not None:
                view_box = tuple(v * session.scale for v in view_box)
            panel = draw_interaction(session.display,
                                     self.display_mask(session, view_mask),
                                     clicks, view_box, caption)
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

    @staticmethod
    def click_record(session: Optional[Session]) -> dict:
        """The current object's clicks and mask, for scripts.

        Args:
            session (Session, optional): The current session.

        Returns:
            dict: ``clicks`` (``[x, y, label]`` in picture pixels, label 1
            positive, 0 negative), ``mask`` (COCO RLE with ``counts`` a
            string; None before a click), ``mask_area`` (pixels),
            ``objects`` (finished objects), ``interact_ms`` (the model's
            interaction), ``click_ms`` (the whole click with the mask at
            the picture's size), ``stage_ms`` and ``branch``.
        """
        steps = [] if session is None else session.steps
        last = steps[-1] if steps else None
        return dict(
            clicks=[[x, y, int(positive)]
                    for x, y, positive in (last.clicks if last else [])],
            mask=None if last is None else mask_to_rle(last.mask),
            mask_area=0 if last is None else int(last.mask.sum()),
            objects=0 if session is None else len(session.objects),
            interact_ms=None if last is None else last.interact_time * 1e3,
            click_ms=None if last is None else last.click_time * 1e3,
            stage_ms={} if last is None else {
                name: seconds * 1e3
                for name, seconds in last.interaction.stage_times.items()
            },
            branch=None if last is None else
            (last.interaction.branch or [None])[0])

    def outputs(self,
                session: Optional[Session],
                note: str = '',
                show_stages: bool = False,
                show_view: bool = True) -> tuple:
        """What the page shows.

        Args:
            session (Session, optional): The current session.
            note (str): Appended to the status line.
            show_stages (bool): Draw SAM-REF's stage panel of the last
                click. Defaults to False (None in its place).
            show_view (bool): Draw the view. Defaults to True; False
                leaves None in its place (a script that reads only the
                click's record).

        Returns:
            tuple: ``(session, view, status, stage panel, stage times)``.
        """
        stages = self.stage_panel(session) if show_stages else None
        view = self.view(session) if show_view else None
        return (session, view, self.status(session, note), stages,
                self.stage_times(session))

    # --------------------------------------------------------- callbacks
    def load(self,
             path: Optional[str],
             session: Optional[Session],
             show_stages: bool = False) -> Iterator[tuple]:
        """Read and encode an uploaded picture (a generator: it first says
        that it is encoding, then shows the picture).

        Args:
            path (str, optional): The uploaded file; None when cleared.
            session (Session, optional): The current session.
            show_stages (bool): See :meth:`outputs`.

        Yields:
            tuple: See :meth:`outputs`.
        """
        if path is None:
            yield self.outputs(session, show_stages=show_stages)
            return
        try:
            image = read_image(path)
        except AppError as error:
            yield self.outputs(session, f'⚠️ {error}', show_stages)
            return
        display, scale = self.display_image(image)
        yield (session, display, f'Encoding {osp.basename(path)} '
               f'({image.shape[1]} x {image.shape[0]})...', None, '')
        predictor = InteractivePredictor(self.model)
        try:
            predictor.set_image(image, channel_order='rgb')
        except ValueError as error:
            yield self.outputs(session, f'⚠️ {error}', show_stages)
            return
        session = Session(predictor.new_session(), image, osp.basename(path),
                          predictor.encode_time, display, scale)
        yield self.outputs(session)

    def click(self,
              session: Optional[Session],
              x: float,
              y: float,
              positive: bool,
              show_stages: bool = False,
              show_view: bool = True) -> tuple:
        """Add a click at ``(x, y)`` of the picture and predict.

        Args:
            session (Session, optional): The current session.
            x (float): Column in picture pixels.
            y (float): Row in picture pixels.
            positive (bool): A positive (object) or negative click.
            show_stages (bool): See :meth:`outputs`.
            show_view (bool): See :meth:`outputs`.

        Returns:
            tuple: See :meth:`outputs`.
        """
        if session is None:
            return self.outputs(None, '⚠️ Upload an image first.')
        try:
            session.clicks.add_click(x, y, positive)
        except ValueError as error:
            return self.outputs(session, f'⚠️ {error}', show_stages, show_view)
        return self.outputs(
            session, show_stages=show_stages, show_view=show_view)

    def scripted_click(self,
                       session: Optional[Session],
                       x: Any,
                       y: Any,
                       label: Any,
                       view: Any = True) -> tuple:
        """A click from a script: like :meth:`click`, but every problem is
        raised (a script has no status line to read).

        Args:
            session (Session, optional): The current session.
            x (float): Column in picture pixels, ``0 <= x <= W``.
            y (float): Row in picture pixels, ``0 <= y <= H``.
            label (int): 1 for a positive click, 0 for a negative one.
            view (bool): Draw the view. Defaults to True; a script that
                reads only :meth:`click_record` saves its drawing and
                encoding with False.

        Returns:
            tuple: See :meth:`outputs` (without the stage panel).

        Raises:
            AppError: No picture yet, ``x`` or ``y`` not a finite number or
                outside the picture, ``label`` not 0 or 1, or ``view`` not
                a bool.
        """
        if session is None:
            raise AppError('no picture yet: upload one first')
        height, width = session.image.shape[:2]
        for name, value, limit in (('x', x, width), ('y', y, height)):
            if isinstance(value, bool) or \
                    not isinstance(value, numbers.Real) or \
                    not math.isfinite(value):
                raise AppError(f'{name} must be a finite number of picture '
                               f'pixels, got {value!r}')
            if not 0 <= value <= limit:
                raise AppError(f'{name} = {value} is outside the {width} x '
                               f'{height} (W x H) picture: 0 <= {name} <= '
                               f'{limit}')
        if not isinstance(label, numbers.Real) or label not in (0, 1):
            raise AppError('label must be 1 (positive click) or 0 (negative '
                           f'click), got {label!r}')
        if not isinstance(view, bool):
            raise AppError(f'view must be true or false, got {view!r}')
        return self.click(
            session, float(x), float(y), bool(label), show_view=view)

    def select(self,
               session: Optional[Session],
               mode: str,
               evt: Any,
               show_stages: bool = False) -> tuple:
        """A click on the view (Gradio's select event, display pixels)."""
        if session is None:
            return self.outputs(None, '⚠️ Upload an image first.')
        height, width = session.image.shape[:2]
        x = min(max(evt.index[0] / session.scale, 0), width)
        y = min(max(evt.index[1] / session.scale, 0), height)
        return self.click(session, x, y, mode == 'positive', show_stages)

    def undo(self,
             session: Optional[Session],
             show_stages: bool = False) -> tuple:
        """Take the last click back."""
        if session is not None:
            session.clicks.undo()
        return self.outputs(session, show_stages=show_stages)

    def reset(self,
              session: Optional[Session],
              show_stages: bool = False) -> tuple:
        """Take all clicks of the current object back."""
        if session is not None:
            session.clicks.reset()
        return self.outputs(session, show_stages=show_stages)

    def next_object(self,
                    session: Optional[Session],
                    show_stages: bool = False) -> tuple:
        """Keep the current mask as a finished object and start another."""
        if session is None or session.mask is None:
            return self.outputs(session, 'No mask to keep yet.', show_stages)
        session.clicks.next_object()
        return self.outputs(session, show_stages=show_stages)

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

        Launch it with ``head=PAGE_SCRIPT`` (the right click and the keys)
        and a queue whose ``default_concurrency_limit`` is the number of
        clicks the machine computes at once: the events that run the model
        share it.

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
                    # JPEG: a picture is encoded in milliseconds and sent
                    # in tens of kB, where PNG takes tens of milliseconds
                    # and ten times the bytes
                    view = gr.Image(
                        label='Click on the object',
                        type='numpy',
                        interactive=False,
                        format='jpeg',
                        elem_id='view')
                    status = gr.Markdown(self.status(None), elem_id='status')
                    gr.Markdown(KEYS_HELP, elem_id='keys')
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
                                    label='Next left click',
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
            show_stages = gr.Checkbox(
                False,
                label='Show the stages of each click (SAM coarse, '
                'GlobalDiff, PatchDiff)',
                visible=isinstance(self.model, SAMRef),
                elem_id='show-stages')
            stages = gr.Image(
                label='Stages of the last click',
                type='numpy',
                interactive=False,
                format='jpeg',
                show_label=False,
                visible=False,
                elem_id='stages')
            stage_times = gr.Markdown('', elem_id='stage-times')
            # The scripted click: x, y, label and view (default true) of
            # /click through Gradio's HTTP API or gradio_client; not on the
            # page.
            script_x = gr.Number(label='x', visible=False)
            script_y = gr.Number(label='y', visible=False)
            script_label = gr.Number(
                label='label (1 positive, 0 negative)', visible=False)
            script_view = gr.Checkbox(
                True,
                label='view (false: no picture drawn, only the record)',
                visible=False)
            script_click = gr.Button(visible=False)
            record = gr.JSON(visible=False)
            shown = [session, view, status, stages, stage_times]
            model_event = dict(concurrency_id='model')

            def to_page(result: tuple) -> tuple:
                # The stage panel shows only when there is one.
                state, image, line, panel, times = result
                return (state, image, line,
                        gr.Image(value=panel, visible=panel
                                 is not None), times)

            def on_upload(path, state, show):
                for result in self.load(path, state, show):
                    yield to_page(result)

            def on_select(state, next_mode, show, evt: gr.SelectData):
                return to_page(self.select(state, next_mode, evt, show))

            def on_scripted_click(x, y, label, view, state):
                try:
                    state, image, line, _, times = self.scripted_click(
                        state, x, y, label, view)
                except AppError as error:
                    raise gr.Error(str(error), print_exception=False) from None
                return state, image, line, times, self.click_record(state)

            # a new picture: the files exported from the last one go
            upload.change(
                on_upload, [upload, session, show_stages],
                shown,
                api_name='upload',
                **model_event).then(
                    lambda: None, None, files, api_visibility='private')
            view.select(
                on_select, [session, mode, show_stages],
                shown,
                js=NEGATIVE_CLICK_JS,
                api_visibility='private',
                **model_event)
            script_click.click(
                on_scripted_click,
                [script_x, script_y, script_label, script_view, session],
                [session, view, status, stage_times, record],
                api_name='click',
                **model_event)
            show_stages.change(
                lambda state, show: to_page(self.outputs(state, '', show)),
                [session, show_stages],
                shown,
                api_visibility='private')
            for button, callback, name in ((undo, self.undo, 'undo'),
                                           (reset, self.reset, 'reset'),
                                           (next_object, self.next_object,
                                            'next_object')):
                button.click(
                    lambda state, show, callback=callback: to_page(
                        callback(state, show)), [session, show_stages],
                    shown,
                    api_name=name)
            export.click(
                self.export, [session], [files, status], api_name='export')
        return page


def mask_to_rle(mask: np.ndarray) -> dict:
    """A mask as COCO's compressed RLE.

    Args:
        mask (np.ndarray): ``H x W`` bool mask.

    Returns:
        dict: ``size`` (``[H, W]``) and ``counts`` (a string).
    """
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        size=[int(v) for v in rle['size']],
        counts=rle['counts'].decode('ascii'))


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
        segmentation = mask_to_rle(mask)
        rle = dict(segmentation, counts=segmentation['counts'].encode())
        annotations.append(
            dict(
                id=index,
                image_id=1,
                category_id=1,
                segmentation=segmentation,
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
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.refiner_dtype=auto '
        '(SAM-REF\'s refiners in bfloat16 where the CPU or GPU has it)')
    parser.add_argument(
        '--demo-work-dir',
        default=DEMO_WORK_DIR,
        help='where make demo wrote its checkpoints')
    parser.add_argument(
        '--concurrency',
        type=int,
        default=len(os.sched_getaffinity(0)),
        help='clicks and uploads of different users computed at once, '
        'each with cores / concurrency torch threads on a CPU (default: '
        'the CPU cores this process may use)')
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error(f'--concurrency must be at least 1, got '
                     f'{args.concurrency}')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    try:
        model, banner = load_model(args.config, args.checkpoint, args.device,
                                   args.demo_work_dir, args.cfg_options)
    except AppError as error:
        raise SystemExit(f'error: {error}') from None
    print(banner.replace('*', '').replace('`', ''))
    if torch.device(args.device).type == 'cpu':
        # the clicks computed at once share the cores
        torch.set_num_threads(
            max(1,
                len(os.sched_getaffinity(0)) // args.concurrency))
    print(f'{args.concurrency} click(s) at once, '
          f'{torch.get_num_threads()} torch thread(s) each')
    examples = make_examples(
        osp.join(tempfile.gettempdir(), 'samref_app_examples'))
    app = ClickApp(model, banner, examples)
    page = app.build()
    page.queue(default_concurrency_limit=args.concurrency).launch(
        server_name='127.0.0.1',
        server_port=args.port,
        max_file_size=f'{MAX_FILE_MB}mb',
        allowed_paths=[osp.dirname(examples[0]), app.export_dir],
        ssr_mode=False,
        show_error=False,
        head=PAGE_SCRIPT)


if __name__ == '__main__':
    main()
