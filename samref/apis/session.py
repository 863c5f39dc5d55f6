# Copyright (c) samref contributors. All rights reserved.
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..models.segmentors import BaseInteractiveSegmentor, Interaction
from ..utils.timer import timed

Click = Tuple[float, float, bool]
Box = Tuple[float, float, float, float]


@dataclass
class ClickResult:
    """A click (or a box) and what the model made of it.

    Attributes:
        clicks (list[tuple[float, float, bool]]): The clicks so far, the
            last one this click: ``(x, y, positive)`` in original pixels;
            none after a box given before any click.
        interaction (Interaction): The model's result.
        mask (np.ndarray): ``H x W`` bool mask at the original size.
        window (tuple[float, ...], optional): PatchDiff's window
            ``(x0, y0, x1, y1)`` in original pixels; None when it did not
            refine.
        interact_time (float): Seconds of the model's ``interact``.
        click_time (float): Seconds with the mask at the original size.
        box (tuple[float, float, float, float], optional): The object's box
            prompt ``(x0, y0, x1, y1)`` in original pixels (edges of the
            pixel grid), None without one.
    """

    clicks: List[Click]
    interaction: Interaction
    mask: np.ndarray
    window: Optional[Tuple[float, ...]]
    interact_time: float
    click_time: float
    box: Optional[Box] = None

    @property
    def click(self) -> Optional[Click]:
        """The newest click, None when the object has only its box."""
        return self.clicks[-1] if self.clicks else None


class InteractiveSession:
    """The clicks on the objects of one encoded image and what a model made
    of them.

    Every caller that clicks (the test loop, the latency tools, the
    predictor, the web demo, the click demo) goes through :meth:`predict`,
    which scales the clicks (and the object's box prompt, if any) to the
    model's input frame, feeds the previous click's result back (its
    logits, and its state for the models that remember more), reads the
    mask at the original size and PatchDiff's window in original pixels.
    :meth:`add_click`, :meth:`add_box`, :meth:`undo`, :meth:`reset` and
    :meth:`next_object` keep an object's prompts and the finished objects.
    Times are read after a synchronisation with the GPU.

    Args:
        model (BaseInteractiveSegmentor): The model, in eval mode.
        image_features (dict[str, Tensor]): ``model.encode_image`` of one
            image.
        metainfo (dict): ``img_shape`` (``(h, w)`` of the resized, unpadded
            input), ``ori_shape`` (the original ``(h, w)``) and
            ``scale_factor`` (``(w_scale, h_scale)`` from original to input
            pixels).
        time_stages (bool, optional): Report the model's ``stage_times``
            (each stage synchronised), or not; None keeps the model's
            ``time_stages``. Defaults to None.
    """

    def __init__(self,
                 model: BaseInteractiveSegmentor,
                 image_features: Dict[str, Tensor],
                 metainfo: dict,
                 time_stages: Optional[bool] = None) -> None:
        self.model = model
        self.image_features = image_features
        self.img_shape = tuple(metainfo['img_shape'][:2])
        self.ori_shape = tuple(metainfo['ori_shape'][:2])
        self.scale = tuple(float(s) for s in metainfo['scale_factor'][:2])
        self.time_stages = time_stages
        self.device = next(iter(image_features.values())).device
        self.steps: List[ClickResult] = []
        self.objects: List[np.ndarray] = []

    # ------------------------------------------------------------ clicks
    def check_clicks(self,
                     clicks: Sequence[Click],
                     allow_none: bool = False) -> List[Click]:
        """Validate clicks.

        Args:
            clicks (Sequence[tuple]): ``(x, y, positive)`` in original
                pixels.
            allow_none (bool): Accept an empty list (an object with a box
                prompt). Defaults to False.

        Returns:
            list[tuple[float, float, bool]]: The clicks as numbers.

        Raises:
            ValueError: No click (unless allowed), a click that is not
                ``(x, y, positive)`` with finite numbers, or one outside the
                image (``0 <= x <= W``, ``0 <= y <= H``).
        """
        if len(clicks) == 0 and not allow_none:
            raise ValueError('give at least one click (or a box)')
        height, width = self.ori_shape
        checked = []
        for index, click in enumerate(clicks):
            try:
                x, y, positive = click
                x, y = float(x), float(y)
            except (TypeError, ValueError):
                raise ValueError(f'click {index} is not (x, y, positive): '
                                 f'{click!r}') from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f'click {index} has non-finite coordinates '
                                 f'{[x, y]}')
            if not (0 <= x <= width and 0 <= y <= height):
                raise ValueError(
                    f'click {index} at (x, y) = {(x, y)} is outside the '
                    f'{width} x {height} (W x H) image')
            checked.append((x, y, bool(positive)))
        return checked

    def check_box(self, box: Sequence[float]) -> Box:
        """Validate a box prompt.

        Args:
            box (Sequence[float]): ``(x0, y0, x1, y1)`` in original pixels.

        Returns:
            tuple[float, float, float, float]: The box as numbers.

        Raises:
            ValueError: Not four finite numbers, not inside the image, or
                not ``x0 < x1`` and ``y0 < y1``.
        """
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ValueError(
                f'a box is (x0, y0, x1, y1), got {box!r}') from None
        height, width = self.ori_shape
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError(f'box {box!r} has non-finite coordinates')
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(
                f'box (x0, y0, x1, y1) = {(x0, y0, x1, y1)} is not a box '
                f'inside the {width} x {height} (W x H) image '
                '(0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H)')
        return x0, y0, x1, y1

    @torch.no_grad()
    def predict(self,
                clicks: Sequence[Click],
                previous: Optional[Interaction] = None,
                box: Optional[Sequence[float]] = None) -> ClickResult:
        """The model's result for clicks, without recording it.

        Args:
            clicks (Sequence[tuple]): ``(x, y, positive)`` in original
                pixels, oldest first; may be empty with a box.
            previous (Interaction, optional): The previous click's result,
                fed back; None for the first click.
            box (Sequence[float], optional): The object's box prompt
                ``(x0, y0, x1, y1)`` in original pixels. Defaults to None.

        Returns:
            ClickResult: The result.
        """
        clicks = self.check_clicks(clicks, allow_none=box is not None)
        w_scale, h_scale = self.scale
        points = torch.tensor([[(x * w_scale, y * h_scale)
                                for x, y, _ in clicks]],
                              dtype=torch.float32,
                              device=self.device).reshape(1, len(clicks), 2)
        labels = torch.tensor([[int(p) for _, _, p in clicks]],
                              dtype=torch.int64,
                              device=self.device)
        boxes = None
        if box is not None:
            box = self.check_box(box)
            x0, y0, x1, y1 = box
            boxes = torch.tensor(
                [[x0 * w_scale, y0 * h_scale, x1 * w_scale, y1 * h_scale]],
                dtype=torch.float32,
                device=self.device)
        times: Dict[str, float] = {}
        stage_timing = nullcontext() if self.time_stages is None else \
            self.model.timing_stages(self.time_stages)
        with timed(times, 'click', self.device):
            with timed(times, 'interact', self.device), stage_timing:
                interaction = self.model.interact(self.image_features, points,
                                                  labels, previous, boxes)
            mask = self.original_mask(interaction.prediction_logits)
        window = interaction.window(0)
        if window is not None:
            x0, y0, x1, y1 = window
            window = (x0 / w_scale, y0 / h_scale, x1 / w_scale, y1 / h_scale)
        return ClickResult(clicks, interaction, mask, window,
                           times['interact'], times['click'], box)

    def original_mask(self, logits: Tensor) -> np.ndarray:
        """Logits over the padded input as a mask of the original image.

        Args:
            logits (Tensor): ``1 x 1 x h x w`` logits over the padded input
                at any resolution.

        Returns:
            np.ndarray: ``H x W`` bool, logits > 0.
        """
        full = self.model.postprocess_logits(logits, self.img_shape,
                                             self.ori_shape)
        return (full[0, 0] > 0).cpu().numpy()

    def add_click(self, x: float, y: float, positive: bool) -> ClickResult:
        """Click on the current object.

        Args:
            x (float): Column in original pixels.
            y (float): Row in original pixels.
            positive (bool): On the object (True) or off it.

        Returns:
            ClickResult: The new result, also recorded.
        """
        previous = self.steps[-1] if self.steps else None
        result = self.predict(
            (previous.clicks if previous else []) + [(x, y, positive)],
            previous.interaction if previous else None, self.box)
        self.steps.append(result)
        return result

    def add_box(self, x0: float, y0: float, x1: float,
                y1: float) -> ClickResult:
        """Give the current object a box prompt (or a new one).

        The box goes with this and every later interaction of the object,
        with the clicks made so far; :meth:`undo` takes it back.

        Args:
            x0 (float): Left edge in original pixels.
            y0 (float): Top edge.
            x1 (float): Right edge (``x0 < x1``).
            y1 (float): Bottom edge (``y0 < y1``).

        Returns:
            ClickResult: The new result, also recorded.
        """
        previous = self.steps[-1] if self.steps else None
        result = self.predict(previous.clicks if previous else [],
                              previous.interaction if previous else None,
                              (x0, y0, x1, y1))
        self.steps.append(result)
        return result

    def undo(self) -> Optional[ClickResult]:
        """Take the last click back.

        Returns:
            ClickResult | None: The result now current, None when no click
            is left.
        """
        if self.steps:
            self.steps.pop()
        return self.steps[-1] if self.steps else None

    def reset(self) -> None:
        """Forget the current object's clicks."""
        self.steps.clear()

    def next_object(self) -> Optional[np.ndarray]:
        """Finish the current object and start the next one.

        Returns:
            np.ndarray | None: The finished object's mask (also kept in
            :attr:`objects`), None when it had no click.
        """
        mask = self.mask
        if mask is not None:
            self.objects.append(mask)
        self.reset()
        return mask

    # ------------------------------------------------------------- state
    @property
    def last(self) -> Optional[ClickResult]:
        """The current result, None before the first click."""
        return self.steps[-1] if self.steps else None

    @property
    def box(self) -> Optional[Box]:
        """The current object's box prompt, None without one."""
        return self.last.box if self.last else None

    @property
    def clicks(self) -> List[Click]:
        """The current object's clicks."""
        return list(self.last.clicks) if self.last else []

    @property
    def mask(self) -> Optional[np.ndarray]:
        """The current object's mask at the original size."""
        return self.last.mask if self.last else None

    @property
    def logits(self) -> Optional[Tensor]:
        """The current low-resolution logits (fed back at the next
        click)."""
        return self.last.interaction.logits if self.last else None

    @property
    def window(self) -> Optional[Tuple[float, ...]]:
        """PatchDiff's window of the last click, in original pixels."""
        return self.last.window if self.last else None

    @property
    def stage_times(self) -> Dict[str, float]:
        """Seconds per stage of the last click (with ``time_stages``)."""
        return dict(self.last.interaction.stage_times) if self.last else {}
