# Copyright (c) samref contributors. All rights reserved.
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import MODELS
from torch import Tensor

from ..models.segmentors import BaseInteractiveSegmentor
from ..utils.checkpoint import format_key_report, load_model_weights


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = False) -> BaseInteractiveSegmentor:
    """Build an interactive segmentor from a config, with its weights.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Weights to load: an official SAM
            checkpoint or one of this toolbox (loaded weights-only). None
            keeps the random initialisation.
        device (str): Device to put the model on. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): Fail on missing or unexpected keys instead of
            listing them in the log. Defaults to False.

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
            _load_checkpoint(checkpoint, map_location='cpu'),
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
    and padded by the model's data preprocessor, and encoded once; each call
    of :meth:`predict` then costs one interaction.

    Args:
        model (BaseInteractiveSegmentor): The model, e.g. from
            :func:`init_model`.
    """

    def __init__(self, model: BaseInteractiveSegmentor) -> None:
        self.model = model
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

    @torch.no_grad()
    def set_image(self, image: np.ndarray, channel_order: str = 'bgr') -> None:
        """Encode an image for the clicks that follow.

        Args:
            image (np.ndarray): ``H x W x 3`` uint8 image.
            channel_order (str): ``'bgr'`` (OpenCV/mmcv, default) or
                ``'rgb'``.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError('image must be an H x W x 3 uint8 array, got '
                             f'shape {image.shape} and dtype {image.dtype}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got "
                             f'{channel_order!r}')
        if channel_order == 'rgb':
            image = np.ascontiguousarray(image[..., ::-1])
        packed = self.pipeline(dict(img=image))
        data = self.model.data_preprocessor(
            dict(
                inputs=[packed['inputs']],
                data_samples=[packed['data_samples']]), False)
        self.metainfo = data['data_samples'][0].metainfo
        self.image_features = self.model.encode_image(data['inputs'])

    @torch.no_grad()
    def predict(self,
                points: Sequence[Sequence[float]],
                labels: Sequence[int],
                previous: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Predict the object for a set of clicks.

        Args:
            points (Sequence[Sequence[float]]): ``N`` clicks ``(x, y)`` in
                pixels of the original image, oldest first.
            labels (Sequence[int]): ``N`` labels, 1 positive, 0 negative.
            previous (dict, optional): The result of the previous call for
                the same object; its ``'logits'`` are fed back (SAM's mask
                prompt) with its ``'state'``. None for the first click.

        Returns:
            dict: ``'mask'`` (``H x W`` bool array, original size) and every
            output of the model's ``interact`` (``'logits'``, ...).
        """
        if self.image_features is None:
            raise RuntimeError('call set_image() before predict()')
        if len(points) != len(labels) or len(points) == 0:
            raise ValueError('give one label per click and at least one '
                             f'click, got {len(points)} points and '
                             f'{len(labels)} labels')
        device = next(iter(self.image_features.values())).device
        scale = torch.as_tensor(self.metainfo['scale_factor'])
        point_tensor = torch.as_tensor(
            points, dtype=torch.float32).reshape(1, -1, 2) * scale
        label_tensor = torch.as_tensor(labels, dtype=torch.int64)[None]
        previous = previous or {}
        outputs = self.model.interact(self.image_features,
                                      point_tensor.to(device),
                                      label_tensor.to(device),
                                      previous.get('logits'),
                                      previous.get('state'))
        full = self.model.postprocess_logits(
            self.model.prediction_logits(outputs),
            self.metainfo['img_shape'], self.metainfo['ori_shape'])
        return dict(outputs, mask=(full[0, 0] > 0).cpu().numpy())
