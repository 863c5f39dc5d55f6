# Copyright (c) samref contributors. All rights reserved.
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import Tensor

from ..models.segmentors import BaseInteractiveSegmentor
from ..utils.host_memory import apply_malloc_cfg
from ..utils.image_files import MAX_IMAGE_PIXELS, check_image_array
from ..utils.safe_load import load_checkpoint_file, resolve_checkpoint
from ..utils.timer import timed
from ..utils.weights import format_key_report, load_model_weights
from .session import ClickResult, InteractiveSession


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = False,
               drop_foreign_objects: bool = False) -> BaseInteractiveSegmentor:
    """Build an interactive segmentor from a config, with its weights.

    The process's host memory is set up as the runner sets it up for
    training and testing: the config's ``env_cfg.malloc_cfg`` (glibc's
    ``malloc`` keeps freed buffers for reuse, see
    :func:`samref.utils.set_malloc_thresholds`), so that the image encoder
    on the CPU does not fault in fresh pages for every image.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Weights to load: an official SAM
            checkpoint or one of this toolbox, a local file or an
            ``http(s)`` URL, loaded under the toolbox's loading policy
            (:func:`samref.utils.load_checkpoint_file`: nothing in it can
            run code). None keeps the random initialisation.
        device (str): Device to put the model on. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): Fail on missing or unexpected keys instead of
            listing them in the log. Defaults to False; a checkpoint that
            provides less than half of the model's weights fails anyway.
        drop_foreign_objects (bool): Load a checkpoint that holds objects
            beyond tensors and plain data (numpy values of another mmengine
            project) with those objects replaced by inert placeholders,
            instead of refusing it. Defaults to False.

    Returns:
        BaseInteractiveSegmentor: The model, in eval mode, with its
        ``checkpoint_report`` (what the checkpoint's keys lacked, added or
        had in another shape, see
        :func:`samref.utils.checkpoint_key_report`; None without a
        checkpoint).
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('config must be a filename or a Config, '
                        f'got {type(config)}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    apply_malloc_cfg(config.get('env_cfg'))
    init_default_scope(config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    if not isinstance(model, BaseInteractiveSegmentor):
        raise TypeError(f'{type(model).__name__} built from the config is '
                        'not an interactive segmentor')
    model.checkpoint_report = None
    if checkpoint is not None:
        load_weights(model, checkpoint, strict, drop_foreign_objects)
    model.cfg = config
    return model.to(device).eval()


def load_weights(model: BaseInteractiveSegmentor,
                 checkpoint: str,
                 strict: bool = False,
                 drop_foreign_objects: bool = False) -> Dict[str, list]:
    """Load a checkpoint into a built segmentor, on whatever device it is.

    The checkpoint is checked against the model before anything is copied,
    so a checkpoint that does not fit leaves the model as it was.

    Args:
        model (BaseInteractiveSegmentor): The segmentor.
        checkpoint (str): A local file or an ``http(s)`` URL, loaded under
            the toolbox's loading policy
            (:func:`samref.utils.load_checkpoint_file`).
        strict (bool): Fail on missing or unexpected keys. Defaults to
            False.
        drop_foreign_objects (bool): See :func:`init_model`. Defaults to
            False.

    Returns:
        dict[str, list]: The key report, also set as the model's
        ``checkpoint_report``.
    """
    report = load_model_weights(
        model,
        load_checkpoint_file(
            resolve_checkpoint(checkpoint),
            map_location='cpu',
            drop_foreign_objects=drop_foreign_objects),
        strict=strict,
        source=checkpoint)
    print_log(
        f'weights from {checkpoint}: {format_key_report(report)}',
        logger='current')
    model.checkpoint_report = report
    return report


class InteractivePredictor:
    """Click on an image and get masks, like ``SamPredictor``, for any model.

    The image is resized so its long side equals the model input size, with
    PIL's bilinear filter (the resize ``SamPredictor`` applies), normalised
    and padded by the model's data preprocessor, and encoded once (its
    seconds in :attr:`encode_time`, the GPU synchronised); each call of
    :meth:`predict` then costs one interaction.

    Images are BGR by default (OpenCV and mmcv read them so), where
    ``SamPredictor`` takes RGB; :class:`~samref.apis.PromptPredictor` has
    ``SamPredictor``'s interface and conventions.

    Args:
        model (BaseInteractiveSegmentor): The model, e.g. from
            :func:`init_model`.
        max_pixels (int): The most pixels an image may have. Defaults to
            :data:`~samref.utils.MAX_IMAGE_PIXELS`; read files with
            :func:`samref.utils.read_image`, which checks the same limit
            before decoding.
    """

    def __init__(self,
                 model: BaseInteractiveSegmentor,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.model = model
        self.max_pixels = max_pixels
        size = model.input_size
        self.pipeline = Compose([
            dict(type='LoadImageFromNDArray'),
            dict(
                type='Resize',
                scale=(size, size),
                keep_ratio=True,
                backend='pillow',
                interpolation='bilinear'),
            dict(type='PackSegInputs'),
        ])
        self.image_features: Optional[Dict[str, Tensor]] = None
        self.metainfo: dict = {}
        self.encode_time = 0.0

    @torch.no_grad()
    def set_image(self, image: np.ndarray, channel_order: str = 'bgr') -> None:
        """Encode an image for the clicks that follow.

        Args:
            image (np.ndarray): ``H x W x 3`` uint8 image. Its short side
                must keep at least one pixel when the long side is resized
                to the model input size.
            channel_order (str): ``'bgr'`` (OpenCV/mmcv, default; the
                opposite of ``SamPredictor.set_image``, which defaults to
                RGB) or ``'rgb'``.

        Raises:
            ValueError: The image is not ``H x W x 3`` uint8, has more than
                ``max_pixels`` pixels, or is too small or narrow to resize.
        """
        check_image_array(image, self.max_pixels, self.model.input_size)
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got "
                             f'{channel_order!r}')
        if channel_order == 'rgb':
            image = np.ascontiguousarray(image[..., ::-1])
        times: Dict[str, float] = {}
        device = next(self.model.parameters()).device
        with timed(times, 'encode', device):
            packed = self.pipeline(dict(img=image))
            data = self.model.data_preprocessor(
                dict(
                    inputs=[packed['inputs']],
                    data_samples=[packed['data_samples']]), False)
            self.metainfo = data['data_samples'][0].metainfo
            self.image_features = self.model.encode_image(data['inputs'])
        self.encode_time = times['encode']

    def new_session(self,
                    time_stages: Optional[bool] = None) -> InteractiveSession:
        """Start clicking on the image's objects.

        Args:
            time_stages (bool, optional): Report the model's stage times, or
                not; None keeps the model's setting. Defaults to None.

        Returns:
            InteractiveSession: A session over the encoded image.
        """
        if self.image_features is None:
            raise RuntimeError('call set_image() before clicking')
        return InteractiveSession(self.model, self.image_features,
                                  self.metainfo, time_stages)

    def predict(self,
                points: Sequence[Sequence[float]],
                labels: Sequence[int],
                previous: Optional[ClickResult] = None) -> ClickResult:
        """Predict the object for a set of clicks.

        Args:
            points (Sequence[Sequence[float]]): ``N`` clicks ``(x, y)`` in
                pixels of the original image, oldest first, inside it:
                ``0 <= x <= W`` and ``0 <= y <= H``.
            labels (Sequence[int]): ``N`` labels, 1 positive, 0 negative.
            previous (ClickResult, optional): The result of the previous
                call for the same object, fed back (SAM's mask prompt and
                the model's state). None for the first click.

        Returns:
            ClickResult: ``mask`` (``H x W`` bool, original size), the
            model's ``interaction``, PatchDiff's ``window`` and the times.

        Raises:
            ValueError: The clicks are not ``N x 2`` finite coordinates
                inside the image, or the labels are not ``N`` values of 0
                and 1.
        """
        session = self.new_session()
        point_array, label_array = self.check_clicks(points, labels)
        clicks = [
            (x, y, bool(label))
            for (x,
                 y), label in zip(point_array.tolist(), label_array.tolist())
        ]
        return session.predict(
            clicks, None if previous is None else previous.interaction)

    @staticmethod
    def check_clicks(points: Sequence[Sequence[float]],
                     labels: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Validate clicks for :meth:`predict` (the session checks that they
        lie inside the image).

        Args:
            points (Sequence[Sequence[float]]): ``N`` clicks ``(x, y)``.
            labels (Sequence[int]): ``N`` labels.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``N x 2`` float64 points and
            ``N`` int64 labels.

        Raises:
            ValueError: Anything but ``N >= 1`` clicks with labels 0 or 1.
        """
        try:
            point_array = np.asarray(points)
            label_array = np.asarray(labels)
        except ValueError as error:  # ragged sequences
            raise ValueError('points must be N (x, y) pairs and labels N '
                             f'numbers: {error}') from None
        for name, array in (('points', point_array), ('labels', label_array)):
            if array.dtype.kind not in 'biuf':
                raise ValueError(f'{name} must be numbers, got an array of '
                                 f'{array.dtype}')
        point_array = point_array.astype(np.float64)
        if point_array.ndim != 2 or point_array.shape[1] != 2 or \
                len(point_array) == 0:
            raise ValueError('points must be N >= 1 clicks (x, y), got an '
                             f'array of shape {point_array.shape}')
        if label_array.shape != (len(point_array), ):
            raise ValueError('give one label per click: got '
                             f'{len(point_array)} points and labels of '
                             f'shape {label_array.shape}')
        bad = ~np.isin(label_array, (0, 1))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(f'click {index} has label {labels[index]!r}; '
                             'labels are 1 (positive) or 0 (negative)')
        return point_array, label_array.astype(np.int64)
