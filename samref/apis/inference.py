# Copyright (c) samref contributors. All rights reserved.
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import Tensor

from ..models.segmentors import BaseInteractiveSegmentor
from ..utils.image_files import MAX_IMAGE_PIXELS
from ..utils.safe_load import load_checkpoint_file, resolve_checkpoint
from ..utils.timer import timed
from ..utils.weights import format_key_report, load_model_weights


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = False,
               drop_foreign_objects: bool = False
               ) -> BaseInteractiveSegmentor:
    """Build an interactive segmentor from a config, with its weights.

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
        BaseInteractiveSegmentor: The model, in eval mode.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('config must be a filename or a Config, '
                        f'got {type(config)}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    if not isinstance(model, BaseInteractiveSegmentor):
        raise TypeError(f'{type(model).__name__} built from the config is '
                        'not an interactive segmentor')
    if checkpoint is not None:
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
    model.cfg = config
    return model.to(device).eval()


class InteractivePredictor:
    """Click on an image and get masks, like ``SamPredictor``, for any model.

    The image is resized so its long side equals the model input size, with
    PIL's bilinear filter (the resize ``SamPredictor`` applies), normalised
    and padded by the model's data preprocessor, and encoded once (its
    seconds in :attr:`encode_time`, the GPU synchronised); each call of
    :meth:`predict` then costs one interaction.

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
            channel_order (str): ``'bgr'`` (OpenCV/mmcv, default) or
                ``'rgb'``.

        Raises:
            ValueError: The image is not ``H x W x 3`` uint8, has more than
                ``max_pixels`` pixels, or is too small or narrow to resize.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError('image must be an H x W x 3 uint8 array, got '
                             f'shape {image.shape} and dtype {image.dtype}')
        height, width = image.shape[:2]
        if height * width > self.max_pixels:
            raise ValueError(
                f'image of {height} x {width} pixels is larger than the '
                f'limit of {self.max_pixels} pixels (max_pixels)')
        scale = self.model.input_size / max(height, width, 1)
        resized = (int(height * scale + 0.5), int(width * scale + 0.5))
        if min(resized) < 1:
            raise ValueError(
                f'image of {height} x {width} pixels cannot be segmented: '
                f'resized to the model input size {self.model.input_size} '
                f'it would be {resized[0]} x {resized[1]} pixels')
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

    @torch.no_grad()
    def predict(self,
                points: Sequence[Sequence[float]],
                labels: Sequence[int],
                previous: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Predict the object for a set of clicks.

        Args:
            points (Sequence[Sequence[float]]): ``N`` clicks ``(x, y)`` in
                pixels of the original image, oldest first, inside it:
                ``0 <= x <= W`` and ``0 <= y <= H``.
            labels (Sequence[int]): ``N`` labels, 1 positive, 0 negative.
            previous (dict, optional): The result of the previous call for
                the same object; its ``'logits'`` are fed back (SAM's mask
                prompt) with its ``'state'``. None for the first click.

        Returns:
            dict: ``'mask'`` (``H x W`` bool array, original size) and every
            output of the model's ``interact`` (``'logits'``, ...).

        Raises:
            ValueError: The clicks are not ``N x 2`` finite coordinates
                inside the image, or the labels are not ``N`` values of 0
                and 1.
        """
        if self.image_features is None:
            raise RuntimeError('call set_image() before predict()')
        point_array, label_array = self.check_clicks(points, labels)
        device = next(iter(self.image_features.values())).device
        scale = torch.as_tensor(self.metainfo['scale_factor'])
        point_tensor = torch.as_tensor(
            point_array, dtype=torch.float32).reshape(1, -1, 2) * scale
        label_tensor = torch.as_tensor(label_array, dtype=torch.int64)[None]
        previous = previous or {}
        outputs = self.model.interact(self.image_features,
                                      point_tensor.to(device),
                                      label_tensor.to(device),
                                      previous.get('logits'),
                                      previous.get('state'))
        return dict(
            outputs,
            mask=self.image_mask(self.model.prediction_logits(outputs)))

    def image_mask(self, logits: Tensor) -> np.ndarray:
        """Logits over the padded input as a mask of the original image.

        Args:
            logits (Tensor): ``1 x 1 x h x w`` logits over the padded input
                at any resolution (e.g. SAM's ``S/4`` logits or a refiner's
                error map).

        Returns:
            np.ndarray: ``H x W`` bool, the original size, logits > 0.
        """
        full = self.model.postprocess_logits(logits,
                                             self.metainfo['img_shape'],
                                             self.metainfo['ori_shape'])
        return (full[0, 0] > 0).cpu().numpy()

    def image_box(self, box: Sequence[float]) -> Tuple[float, ...]:
        """A box of the input frame in pixels of the original image.

        Args:
            box (Sequence[float]): ``(x0, y0, x1, y1)`` in the model input
                frame, e.g. SAM-REF's PatchDiff window.

        Returns:
            tuple[float, ...]: ``(x0, y0, x1, y1)`` in original pixels.
        """
        w_scale, h_scale = self.metainfo['scale_factor']
        x0, y0, x1, y1 = (float(v) for v in box)
        return (x0 / w_scale, y0 / h_scale, x1 / w_scale, y1 / h_scale)

    def check_clicks(self, points: Sequence[Sequence[float]],
                     labels: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Validate clicks for :meth:`predict`.

        Args:
            points (Sequence[Sequence[float]]): ``N`` clicks ``(x, y)``.
            labels (Sequence[int]): ``N`` labels.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``N x 2`` float64 points and
            ``N`` int64 labels.

        Raises:
            ValueError: Anything but ``N >= 1`` finite clicks inside the
                image with labels 0 or 1.
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
        bad = ~np.isfinite(point_array).all(axis=1)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(f'click {index} has non-finite coordinates '
                             f'{point_array[index].tolist()}')
        bad = ~np.isin(label_array, (0, 1))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(f'click {index} has label {labels[index]!r}; '
                             'labels are 1 (positive) or 0 (negative)')
        height, width = self.metainfo['ori_shape'][:2]
        x, y = point_array[:, 0], point_array[:, 1]
        bad = (x < 0) | (x > width) | (y < 0) | (y > height)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f'click {index} at (x, y) = {tuple(point_array[index])} is '
                f'outside the {width} x {height} (W x H) image')
        return point_array, label_array.astype(np.int64)
