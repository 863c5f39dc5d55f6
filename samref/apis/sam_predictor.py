# Copyright (c) samref contributors. All rights reserved.
from contextlib import nullcontext
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmseg.structures import SegDataSample
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from ..models.segmentors import SAM, Interaction, SAMRef
from ..models.segmentors.sam import resize_logits
from ..utils.image_files import MAX_IMAGE_PIXELS, check_image_array
from ..utils.timer import timed

PredictorOutputs = Tuple[Tensor, Tensor, Tensor]


class PromptPredictor:
    """``segment_anything.SamPredictor`` for the toolbox's models.

    The methods, arguments, defaults, shapes and return values are those of
    ``SamPredictor``, so its users change one import: images are RGB
    unless ``image_format='BGR'``; prompts are points, a box and a
    low-resolution mask; :meth:`predict` returns numpy arrays and
    :meth:`predict_torch` tensors. :attr:`transform` is
    ``segment_anything``'s ``ResizeLongestSide`` at the model input size,
    for the prompts of :meth:`predict_torch`.

    For :class:`~samref.models.SAM` every call runs SAM's prompt encoder
    and mask decoder as ``SamPredictor`` does and gives its results. Models
    that refine SAM's masks (:class:`~samref.models.SAMRef`,
    :class:`~samref.models.FocSAM`) take their click path, the model's
    ``interact`` with its refiners, for points, a box or both with
    ``multimask_output=False`` (SAM-REF's refiners see the box with its
    ``box_channel``): ``mask_input`` is then the previous click's
    mask (the ``low_res_masks`` of the previous call continue its object
    with the model's state, other logits become the previous mask, None
    starts a new object), one mask per prompt comes back, and
    :attr:`last_interaction` holds the model's
    :class:`~samref.models.Interaction` (its stages' outputs and, with
    ``time_stages``, their seconds; :meth:`patch_window` gives PatchDiff's
    window in original pixels). ``multimask_output=True``, which the
    refiners cannot take, goes through SAM's decoder of those models.

    Args:
        model (SAM): A SAM-based segmentor, e.g. from
            :func:`~samref.apis.init_model`, in eval mode.
        max_pixels (int): The most pixels an image may have. Defaults to
            :data:`~samref.utils.MAX_IMAGE_PIXELS`.
        time_stages (bool, optional): Report the model's ``stage_times`` in
            :attr:`last_interaction`, or not; None keeps the model's
            ``time_stages``. Defaults to None.
    """

    def __init__(self,
                 model: SAM,
                 max_pixels: int = MAX_IMAGE_PIXELS,
                 time_stages: Optional[bool] = None) -> None:
        if not isinstance(model, SAM):
            raise TypeError('model must be a SAM-based segmentor (SAM, '
                            f'FocSAM, SAMRef), got {type(model).__name__}')
        self.model = model
        self.max_pixels = max_pixels
        self.time_stages = time_stages
        self.transform = ResizeLongestSide(model.input_size)
        # The click path is the model's own interact when it overrides SAM's.
        self.has_click_path = type(model).interact is not SAM.interact
        self.reset_image()

    # ---------------------------------------------------------------- image
    def set_image(self, image: np.ndarray, image_format: str = 'RGB') -> None:
        """Encode an image for the prompts that follow.

        Args:
            image (np.ndarray): ``H x W x 3`` uint8 image.
            image_format (str): Its channel order, ``'RGB'`` (default) or
                ``'BGR'`` (OpenCV, mmcv).

        Raises:
            ValueError: The image is not ``H x W x 3`` uint8, has more than
                ``max_pixels`` pixels or is too narrow to resize, or
                ``image_format`` is neither ``'RGB'`` nor ``'BGR'``.
        """
        if image_format not in ('RGB', 'BGR'):
            raise ValueError("image_format must be 'RGB' or 'BGR', got "
                             f'{image_format!r}')
        check_image_array(image, self.max_pixels, self.model.input_size)
        if image_format == 'BGR':
            image = image[..., ::-1]
        resized_image = self.transform.apply_image(np.ascontiguousarray(image))
        self.set_torch_image(
            torch.as_tensor(resized_image,
                            device=self.device).permute(2, 0, 1)[None],
            image.shape[:2])

    @torch.no_grad()
    def set_torch_image(self, transformed_image: Tensor,
                        original_image_size: Tuple[int, ...]) -> None:
        """Encode an image already resized by :attr:`transform`.

        The model's data preprocessor normalises and pads it, with the
        channel order the model's config feeds.

        Args:
            transformed_image (Tensor): ``1 x 3 x h x w`` RGB image whose
                long side is the model input size, values in ``[0, 255]``.
            original_image_size (tuple[int, int]): ``(H, W)`` of the image
                before the resize.

        Raises:
            ValueError: The image is not ``1 x 3 x h x w`` with the long side
                at the input size, or ``original_image_size`` is not two
                positive integers.
        """
        size = self.model.input_size
        shape = tuple(transformed_image.shape)
        if len(shape) != 4 or shape[:2] != (1, 3) or max(shape[2:]) != size:
            raise ValueError(
                'transformed_image must be 1 x 3 x h x w with its long side '
                f'at the model input size {size}, got shape {shape}')
        original = tuple(int(v) for v in original_image_size)
        if len(original) != 2 or min(original) < 1:
            raise ValueError('original_image_size must be (H, W), got '
                             f'{original_image_size!r}')
        self.reset_image()
        input_size = shape[2:]
        # The preprocessor takes images as mmcv loads them (BGR) and gives
        # the model the channel order of its config.
        data = self.model.data_preprocessor(
            dict(
                inputs=[transformed_image[0].flip(0)],
                data_samples=[
                    SegDataSample(
                        metainfo=dict(
                            img_shape=input_size, ori_shape=original))
                ]), False)
        self.image_features = self.model.encode_image(data['inputs'])
        self.original_size = original
        self.input_size = input_size
        self.is_image_set = True

    def reset_image(self) -> None:
        """Forget the image, its features and the last interaction."""
        self.is_image_set = False
        self.image_features: Optional[Dict[str, Tensor]] = None
        self.original_size: Optional[Tuple[int, int]] = None
        self.input_size: Optional[Tuple[int, int]] = None
        self.last_interaction: Optional[Interaction] = None
        self.interact_time = 0.0
        self._last_low_res: Optional[Tensor] = None

    @property
    def features(self) -> Optional[Tensor]:
        """The image encoder's output, ``1 x C x h x w``; None without an
        image."""
        if self.image_features is None:
            return None
        return self.image_features['image_embeddings']

    def get_image_embedding(self) -> Tensor:
        """The image encoder's output for the image.

        Returns:
            Tensor: ``1 x C x h x w`` (``1 x 256 x 64 x 64`` for SAM's
            published sizes).

        Raises:
            RuntimeError: No image is set.
        """
        self._check_image_set()
        return self.features

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    # ------------------------------------------------------------ prompts
    def predict(
        self,
        point_coords: Optional[np.ndarray] = None,
        point_labels: Optional[np.ndarray] = None,
        box: Optional[np.ndarray] = None,
        mask_input: Optional[np.ndarray] = None,
        multimask_output: bool = True,
        return_logits: bool = False
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the prompts of one object, in original pixels.

        Args:
            point_coords (np.ndarray, optional): ``N x 2`` points ``(x, y)``
                in pixels of the original image.
            point_labels (np.ndarray, optional): ``N`` labels, 1 for a
                foreground point, 0 for a background one.
            box (np.ndarray, optional): A box ``(x0, y0, x1, y1)`` in pixels
                of the original image, shape ``4`` or ``1 x 4``.
            mask_input (np.ndarray, optional): ``1 x h x w`` logits of a
                previous mask, e.g. one of the ``low_res_masks`` of the
                previous call (``h = w = 256`` for SAM's published sizes).
            multimask_output (bool): Three masks instead of one. Defaults
                to True.
            return_logits (bool): Logits instead of boolean masks. Defaults
                to False.

        Returns:
            tuple[np.ndarray, np.ndarray, np.ndarray]: ``masks``
            (``C x H x W``, bool or float32 logits, ``C`` 3 or 1),
            ``iou_predictions`` (``C``, SAM decoder's estimate of its own
            masks) and ``low_res_masks`` (``C x h x w`` logits to pass back
            as ``mask_input``).

        Raises:
            RuntimeError: No image is set.
            ValueError: A prompt has the wrong shape, coordinates are not
                finite, labels are not 0 or 1, or points come without
                labels or labels without points.
        """
        self._check_image_set()
        self._check_point_pair(point_coords, point_labels)
        coords, labels, boxes, masks = None, None, None, None
        if point_coords is not None:
            points = self._array('point_coords', point_coords)
            if points.ndim != 2 or points.shape[1] != 2:
                raise ValueError('point_coords must be N x 2 (x, y), got '
                                 f'shape {points.shape}')
            label_array = self._array('point_labels', point_labels)
            if label_array.shape != (len(points), ):
                raise ValueError('point_labels must hold one label per '
                                 f'point ({len(points)}), got shape '
                                 f'{label_array.shape}')
            self._check_labels(label_array, (0, 1))
            coords = torch.as_tensor(
                self.transform.apply_coords(points, self.original_size),
                dtype=torch.float32,
                device=self.device)[None]
            labels = torch.as_tensor(
                label_array, dtype=torch.int64, device=self.device)[None]
        if box is not None:
            box_array = self._array('box', box)
            if box_array.shape not in ((4, ), (1, 4)):
                raise ValueError('box must be (x0, y0, x1, y1), shape 4 or '
                                 f'1 x 4, got shape {box_array.shape}')
            boxes = torch.as_tensor(
                self.transform.apply_boxes(box_array, self.original_size),
                dtype=torch.float32,
                device=self.device).reshape(1, 4)
        if mask_input is not None:
            mask_array = self._array('mask_input', mask_input)
            if mask_array.ndim != 3 or len(mask_array) != 1:
                raise ValueError('mask_input must be 1 x h x w logits, got '
                                 f'shape {mask_array.shape}')
            masks = torch.as_tensor(
                mask_array, dtype=torch.float32, device=self.device)[None]
        outputs = self.predict_torch(coords, labels, boxes, masks,
                                     multimask_output, return_logits)
        return tuple(output[0].cpu().numpy() for output in outputs)

    @torch.no_grad()
    def predict_torch(self,
                      point_coords: Optional[Tensor],
                      point_labels: Optional[Tensor],
                      boxes: Optional[Tensor] = None,
                      mask_input: Optional[Tensor] = None,
                      multimask_output: bool = True,
                      return_logits: bool = False) -> PredictorOutputs:
        """Masks for a batch of prompts on the image, in the input frame.

        Coordinates are those of the resized image (``transform.
        apply_coords_torch`` / ``apply_boxes_torch`` of original pixels).

        Args:
            point_coords (Tensor, optional): ``B x N x 2`` points ``(x, y)``.
            point_labels (Tensor, optional): ``B x N`` labels, 1 foreground,
                0 background, -1 padding.
            boxes (Tensor, optional): ``B x 4`` boxes ``(x0, y0, x1, y1)``.
            mask_input (Tensor, optional): ``B x 1 x h x w`` logits of
                previous masks (``h = w = 256`` for SAM's published sizes).
            multimask_output (bool): Three masks per prompt instead of one.
                Defaults to True.
            return_logits (bool): Logits instead of boolean masks. Defaults
                to False.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``masks`` (``B x C x H x W`` at
            the original size), ``iou_predictions`` (``B x C``) and
            ``low_res_masks`` (``B x C x h x w``).

        Raises:
            RuntimeError: No image is set.
            ValueError: A prompt has the wrong shape or batch size, or
                labels are not -1, 0 or 1.
        """
        self._check_image_set()
        self._check_prompts(point_coords, point_labels, boxes, mask_input)
        has_points = point_coords is not None and point_coords.shape[1] > 0
        if self.has_click_path and (has_points or boxes is not None) \
                and not multimask_output:
            low_res, iou_predictions, logits = self._click(
                point_coords if has_points else None,
                point_labels if has_points else None, boxes, mask_input)
        else:
            low_res, iou_predictions = self._decode(point_coords, point_labels,
                                                    boxes, mask_input,
                                                    multimask_output)
            logits = low_res
            self.last_interaction = None
            self._last_low_res = None
        masks = self.model.postprocess_logits(logits, self.input_size,
                                              self.original_size)
        if not return_logits:
            masks = masks > 0
        return masks, iou_predictions, low_res

    def _decode(self, point_coords: Optional[Tensor],
                point_labels: Optional[Tensor], boxes: Optional[Tensor],
                mask_input: Optional[Tensor],
                multimask_output: bool) -> Tuple[Tensor, Tensor]:
        """SAM's prompt encoder and mask decoder on the image embedding."""
        points = None if point_coords is None else (point_coords, point_labels)
        prompt_encoder = self.model.prompt_encoder
        sparse, dense = prompt_encoder(
            points=points, boxes=boxes, masks=mask_input)
        return self.model.mask_decoder(
            image_embeddings=self.features,
            image_pe=prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output)

    def _click(self, point_coords: Optional[Tensor],
               point_labels: Optional[Tensor], boxes: Optional[Tensor],
               mask_input: Optional[Tensor]) -> PredictorOutputs:
        """The model's click path: ``B x 1`` low-resolution logits at SAM's
        mask input size, IoU predictions and the logits of the masks."""
        if point_coords is None:  # a box alone
            point_coords = boxes.new_zeros((len(boxes), 0, 2))
            point_labels = torch.zeros((len(boxes), 0),
                                       dtype=torch.int64,
                                       device=boxes.device)
        previous = None
        if mask_input is not None:
            if self._last_low_res is not None and torch.equal(
                    mask_input, self._last_low_res):
                previous = self.last_interaction
            else:
                if isinstance(self.model, SAMRef):
                    # SAM-REF feeds back its logits at a quarter of the
                    # input size.
                    mask_input = resize_logits(mask_input,
                                               (self.model.map_size, ) * 2)
                previous = Interaction(logits=mask_input)
        batch = len(point_coords)
        features = {
            name: expand_batch(value, batch)
            for name, value in self.image_features.items()
        }
        times: Dict[str, float] = {}
        stage_timing = nullcontext() if self.time_stages is None else \
            self.model.timing_stages(self.time_stages)
        with timed(times, 'interact', self.device), stage_timing:
            interaction = self.model.interact(features, point_coords,
                                              point_labels, previous, boxes)
        self.last_interaction = interaction
        self.interact_time = times['interact']
        low_res = resize_logits(interaction.logits,
                                self.model.prompt_encoder.mask_input_size)
        self._last_low_res = low_res
        return (low_res, interaction.iou_pred.reshape(batch, 1),
                interaction.prediction_logits)

    def patch_window(
            self,
            index: int = 0) -> Optional[Tuple[float, float, float, float]]:
        """PatchDiff's window at the last click, in original pixels.

        Args:
            index (int): The prompt's index in the batch. Defaults to 0.

        Returns:
            tuple[float, float, float, float] | None: ``(x0, y0, x1, y1)``,
            None when PatchDiff did not refine that prompt or the last call
            did not take the click path.
        """
        window = None if self.last_interaction is None else \
            self.last_interaction.window(index)
        if window is None:
            return None
        h_scale = self.input_size[0] / self.original_size[0]
        w_scale = self.input_size[1] / self.original_size[1]
        x0, y0, x1, y1 = window
        return (x0 / w_scale, y0 / h_scale, x1 / w_scale, y1 / h_scale)

    # ---------------------------------------------------------- checks
    def _check_image_set(self) -> None:
        if not self.is_image_set:
            raise RuntimeError('An image must be set with set_image() or '
                               'set_torch_image() first')

    @staticmethod
    def _array(name: str, value) -> np.ndarray:
        """``value`` as a finite numeric array, or a ValueError naming it."""
        try:
            array = np.asarray(value)
        except ValueError as error:  # ragged sequences
            raise ValueError(f'{name} must be an array: {error}') from None
        if array.dtype.kind not in 'biuf':
            raise ValueError(f'{name} must hold numbers, got {array.dtype}')
        if not np.isfinite(array).all():
            raise ValueError(f'{name} holds values that are not finite')
        return array

    @staticmethod
    def _check_point_pair(point_coords, point_labels) -> None:
        """A ValueError when points come without labels or labels without
        points."""
        if (point_coords is None) != (point_labels is None):
            raise ValueError(
                'point_coords and point_labels come together: '
                'got only ' +
                ('point_coords' if point_labels is None else 'point_labels'))

    @staticmethod
    def _check_labels(labels, allowed: Tuple[int, ...]) -> None:
        """A ValueError when a label is not one of ``allowed``."""
        values = labels.flatten().tolist()
        wrong = [v for v in values if v not in allowed]
        if wrong:
            names = ', '.join(map(str, allowed[:-1])) + f' or {allowed[-1]}'
            raise ValueError(f'point_labels must be {names} '
                             '(1 foreground, 0 background' +
                             (', -1 padding' if -1 in allowed else '') +
                             f'), got {wrong[0]!r}')

    def _check_prompts(self, point_coords: Optional[Tensor],
                       point_labels: Optional[Tensor], boxes: Optional[Tensor],
                       mask_input: Optional[Tensor]) -> None:
        """ValueErrors for prompts of :meth:`predict_torch` that SAM cannot
        take."""
        batches = {}
        self._check_point_pair(point_coords, point_labels)
        if point_coords is not None:
            if point_coords.dim() != 3 or point_coords.shape[2] != 2:
                raise ValueError('point_coords must be B x N x 2, got shape '
                                 f'{tuple(point_coords.shape)}')
            if tuple(point_labels.shape) != tuple(point_coords.shape[:2]):
                raise ValueError(
                    'point_labels must be B x N, one label per point '
                    f'{tuple(point_coords.shape[:2])}, got shape '
                    f'{tuple(point_labels.shape)}')
            self._check_labels(point_labels, (-1, 0, 1))
            batches['point_coords'] = len(point_coords)
        if boxes is not None:
            if boxes.dim() != 2 or boxes.shape[1] != 4:
                raise ValueError('boxes must be B x 4 (x0, y0, x1, y1), got '
                                 f'shape {tuple(boxes.shape)}')
            batches['boxes'] = len(boxes)
        if mask_input is not None:
            size = tuple(self.model.prompt_encoder.mask_input_size)
            if mask_input.dim() != 4 or mask_input.shape[1] != 1 or \
                    tuple(mask_input.shape[2:]) != size:
                raise ValueError(
                    f'mask_input must be B x 1 x {size[0]} x {size[1]} '
                    f'logits, got shape {tuple(mask_input.shape)}')
            batches['mask_input'] = len(mask_input)
        if len(set(batches.values())) > 1:
            raise ValueError('the prompts must have one batch size, got ' +
                             ', '.join(f'{name}: {batch}'
                                       for name, batch in batches.items()))


def expand_batch(value, batch: int):
    """An image feature of batch 1 viewed as ``batch`` copies.

    Args:
        value (Tensor | list[Tensor] | object): A value of
            ``encode_image``'s output.
        batch (int): The batch size.

    Returns:
        The value with its tensors expanded along the first dimension;
        anything else as it is.
    """
    if isinstance(value, Tensor) and value.dim() and len(value) == 1:
        return value.expand(batch, *value.shape[1:])
    if isinstance(value, list):
        return [expand_batch(v, batch) for v in value]
    return value
