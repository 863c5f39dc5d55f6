# Copyright (c) samref contributors. All rights reserved.
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.utils import ForwardResults, OptConfigType, OptMultiConfig
from torch import Tensor

from .interaction import Interaction


def logits_to_original(logits: Tensor, input_size: int, img_shape: Tuple[int,
                                                                         int],
                       ori_shape: Tuple[int, int]) -> Tensor:
    """Bring logits over the padded input back to the original size.

    Upsamples to the padded input size (when needed), crops the padding
    off and resizes to the original size, all bilinearly, as SAM does.

    Args:
        logits (Tensor): ``B x C x h x w`` square logits over the padded
            input.
        input_size (int): Side of the padded, square input.
        img_shape (tuple[int, int]): ``(h, w)`` of the resized, unpadded
            input.
        ori_shape (tuple[int, int]): ``(h, w)`` of the original image.

    Returns:
        Tensor: ``B x C x H x W`` logits at the original size.
    """
    if logits.shape[-2:] != (input_size, input_size):
        logits = F.interpolate(
            logits, (input_size, input_size),
            mode='bilinear',
            align_corners=False)
    logits = logits[..., :img_shape[0], :img_shape[1]]
    return F.interpolate(
        logits, tuple(ori_shape), mode='bilinear', align_corners=False)


class BaseInteractiveSegmentor(BaseModel, metaclass=ABCMeta):
    """The interface every click-based segmentor of the toolbox implements.

    Interactive evaluation, demos and the predictor API drive a model only
    through two calls, so SAM, SAM-REF and any later method are evaluated by
    the same code:

    - :meth:`encode_image` once per image: everything that depends on the
      image alone, returned as a dict of batched tensors that callers reuse
      for every object and every click on that image. Its
      ``'image_embeddings'`` entry is the output of ``self.image_encoder``,
      the costly part, which callers may store (an embedding cache,
      pre-extracted embeddings) and pass back to skip the encoder;
    - :meth:`interact` once per click: the clicks so far plus the previous
      click's :class:`Interaction` (its ``logits``, and ``state`` for models
      that remember more) give a new :class:`Interaction`, whose
      ``prediction_logits`` the mask is read from.

    Clicks are given in the frame of the resized, unpadded model input as
    ``points`` (``B x N x 2``, ``(x, y)``) and ``labels`` (``B x N``, 1 for a
    positive click, 0 for a negative one, -1 for padding). An object may
    also have a box prompt (``boxes``, ``B x 4``, ``(x0, y0, x1, y1)`` on the
    pixel grid's edges in the same frame), given with every interaction of
    the object; with a box the clicks may be none (``N = 0``).

    :attr:`time_stages` (False by default; :meth:`timing_stages` sets it
    for a block) makes :meth:`interact` report the seconds of its stages
    (``stage_times``), each stage synchronised with the GPU; without it no
    stage waits for the GPU, as in training.

    Args:
        input_size (int): Side of the square padded model input.
        data_preprocessor (dict, optional): Normalisation and padding of the
            inputs. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 input_size: int,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.input_size = input_size
        self.time_stages = False

    @contextmanager
    def timing_stages(self, enabled: bool = True) -> Iterator[None]:
        """Set :attr:`time_stages` within the block.

        Args:
            enabled (bool): Report ``stage_times``. Defaults to True.
        """
        previous, self.time_stages = self.time_stages, enabled
        try:
            yield
        finally:
            self.time_stages = previous

    @abstractmethod
    def encode_image(
            self,
            inputs: Tensor,
            image_embeddings: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Compute the click-independent features of a batch of images.

        Args:
            inputs (Tensor): Normalised, padded images, ``B x 3 x S x S``.
            image_embeddings (Tensor, optional): Stored output of
                ``self.image_encoder`` for ``inputs``; the encoder is skipped
                when given.

        Returns:
            dict[str, Tensor]: Batched features, reusable for every click,
            with at least ``'image_embeddings'``.
        """

    @abstractmethod
    def interact(self,
                 image_features: Dict[str, Tensor],
                 points: Tensor,
                 labels: Tensor,
                 previous: Optional[Interaction] = None,
                 boxes: Optional[Tensor] = None) -> Interaction:
        """Predict the object for the clicks (and box) so far.

        Args:
            image_features (dict[str, Tensor]): Output of
                :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` click coordinates ``(x, y)`` in
                the model input frame.
            labels (Tensor): ``B x N`` click labels (1, 0 or -1 padding).
            previous (Interaction, optional): The previous click's result,
                whose ``logits`` (and ``state``, for models that remember
                more) are fed back; None before the first click.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame;
                None without a box.

        Returns:
            Interaction: At least the new ``B x 1 x h x w`` low-resolution
            ``logits`` that are fed back; the mask is read from its
            ``prediction_logits``; ``stage_times`` when :attr:`time_stages`
            is set.
        """

    def postprocess_logits(self, logits: Tensor, img_shape: Tuple[int, int],
                           ori_shape: Tuple[int, int]) -> Tensor:
        """:func:`logits_to_original` at this segmentor's input size."""
        return logits_to_original(logits, self.input_size, img_shape,
                                  ori_shape)

    @staticmethod
    def clicks_to_input_frame(
            data_samples: Sequence[SegDataSample]) -> Tuple[Tensor, Tensor]:
        """Collect the clicks of data samples, scaled to the input frame.

        Each sample holds ``clicks`` with ``points`` (``N x 2``, ``(x, y)`` in
        original pixels) and ``labels`` (``N``); they are scaled by the
        sample's ``scale_factor`` (``(w_scale, h_scale)``) and padded to a
        common length with label -1.

        Args:
            data_samples (Sequence[SegDataSample]): Samples with ``clicks``.

        Returns:
            tuple[Tensor, Tensor]: ``B x N x 2`` points and ``B x N`` labels.
        """
        num = max(len(sample.clicks.labels) for sample in data_samples)
        points = torch.zeros(len(data_samples), num, 2)
        labels = torch.full((len(data_samples), num), -1, dtype=torch.int64)
        for i, sample in enumerate(data_samples):
            scale = torch.as_tensor(
                sample.metainfo.get('scale_factor', (1.0, 1.0)),
                dtype=torch.float32)
            sample_points = torch.as_tensor(
                sample.clicks.points, dtype=torch.float32)
            points[i, :len(sample_points)] = sample_points * scale
            labels[i, :len(sample_points)] = torch.as_tensor(
                sample.clicks.labels, dtype=torch.int64)
        return points, labels

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> ForwardResults:
        """One interaction on a batch, in mmseg's forward modes.

        Args:
            inputs (Tensor): Normalised, padded images.
            data_samples (list[SegDataSample], optional): Samples carrying
                ``clicks`` (see :meth:`clicks_to_input_frame`) and, for
                ``'predict'``, ``img_shape`` and ``ori_shape``.
            mode (str): ``'tensor'`` returns the low-resolution logits,
                ``'predict'`` the samples with ``seg_logits`` and
                ``pred_sem_seg`` at the original size, ``'loss'`` a dict of
                losses (for segmentors that train).

        Returns:
            Tensor | list[SegDataSample] | dict: See ``mode``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode not in ('tensor', 'predict'):
            raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                               'predict and tensor mode')
        if data_samples is None or not all('clicks' in sample
                                           for sample in data_samples):
            raise ValueError(f'forward(mode={mode!r}) needs data samples '
                             'that carry clicks')
        points, labels = self.clicks_to_input_frame(data_samples)
        device = inputs.device
        outputs = self.interact(
            self.encode_image(inputs), points.to(device), labels.to(device))
        if mode == 'tensor':
            return outputs.logits
        logits = outputs.prediction_logits
        for i, sample in enumerate(data_samples):
            full = self.postprocess_logits(logits[i:i + 1],
                                           sample.metainfo['img_shape'],
                                           sample.metainfo['ori_shape'])[0]
            sample.set_data({
                'seg_logits': PixelData(data=full),
                'pred_sem_seg': PixelData(data=(full > 0).long())
            })
        return data_samples

    @abstractmethod
    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """Losses of a training step (``forward(mode='loss')``).

        Args:
            inputs (Tensor): Normalised, padded images.
            data_samples (list[SegDataSample]): Training samples.

        Returns:
            dict[str, Tensor]: The losses (``loss``-prefixed items are
            summed) and values to log.
        """
