# Copyright (c) samref contributors. All rights reserved.
"""Pictures of an interaction: a mask, its clicks and a refinement window.

Masks, outlines, clicks and windows are drawn with OpenCV on a copy of the
picture (a few milliseconds, so the web demo redraws its view at every
click); captions and titles with mmengine's
:class:`~mmengine.visualization.Visualizer` (``draw_texts``). The web demo,
``tools/test.py --show-dir`` and the demos share these functions.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.visualization import Visualizer

Click = Tuple[float, float, bool]
Color = Tuple[int, int, int]

# Saturated candidates for the mask; the one farthest from the picture's
# colours under the mask is used, so the mask reads on any picture.
MASK_PALETTE: Tuple[Color, ...] = (
    (30, 144, 255),  # blue
    (255, 140, 0),  # orange
    (255, 0, 255),  # magenta
    (0, 230, 230),  # cyan
    (255, 235, 0),  # yellow
)
POSITIVE_COLOR: Color = (0, 200, 0)
NEGATIVE_COLOR: Color = (230, 0, 0)
BOX_COLOR: Color = (255, 215, 0)
MASK_ALPHA = 0.5


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is an ``H x W x 3`` uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or \
            image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('image must be an H x W x 3 uint8 RGB array, got '
                         f'{getattr(image, "shape", type(image))} '
                         f'{getattr(image, "dtype", "")}')


def pick_mask_color(image: np.ndarray,
                    region: Optional[np.ndarray] = None) -> Color:
    """The palette colour farthest from the mean colour of a region.

    Args:
        image (np.ndarray): ``H x W x 3`` uint8 RGB picture.
        region (np.ndarray, optional): ``H x W`` bool pixels the mask will
            cover (e.g. the object); the whole picture when None or empty.

    Returns:
        tuple[int, int, int]: An RGB colour of :data:`MASK_PALETTE`.
    """
    check_image(image)
    weights = None if region is None or not region.any() else \
        region.astype(np.uint8)
    mean = cv2.mean(image, mask=weights)[:3]
    distances = [np.linalg.norm(np.subtract(c, mean)) for c in MASK_PALETTE]
    return MASK_PALETTE[int(np.argmax(distances))]


def _text_size(height: int, width: int) -> int:
    """A caption font size (points) that stays legible on small panels."""
    return int(max(9, min(16, np.sqrt(height * width) / 40)))


def _line_width(height: int, width: int) -> int:
    """An outline width (pixels) that reads on small and large pictures."""
    return max(1, int(round(np.sqrt(height * width) / 400)))


def _draw_dashed_box(canvas: np.ndarray, corners: Sequence[float],
                     color: Color, thickness: int) -> None:
    """Outline ``(x0, y0, x1, y1)`` on ``canvas`` with dashes, in place."""
    x0, y0, x1, y1 = corners
    dash, gap = 5 * thickness, 3 * thickness
    for start, end in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)),
                       ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        start, end = np.asarray(start), np.asarray(end)
        length = float(np.abs(end - start).max())
        for offset in np.arange(0.0, length + 1, dash + gap):
            first = start + (end - start) * (offset / max(length, 1.0))
            last = start + (end - start) * (
                min(offset + dash, length) / max(length, 1.0))
            cv2.line(canvas, tuple(int(round(v)) for v in first),
                     tuple(int(round(v)) for v in last), color, thickness,
                     cv2.LINE_AA)


def _box_corners(box: Sequence[float], height: int, width: int) -> np.ndarray:
    """``(x0, y0, x1, y1)`` checked and clipped to the picture."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x0 <= x1 and y0 <= y1):
        raise ValueError(f'box (x0, y0, x1, y1) = {tuple(box)} is empty')
    return np.clip([x0, y0, x1, y1], 0, [width - 1, height - 1] * 2)


def draw_interaction(
        image: np.ndarray,
        mask: Optional[np.ndarray] = None,
        clicks: Sequence[Sequence[float]] = (),
        box: Optional[Sequence[float]] = None,
        caption: str = '',
        mask_color: Optional[Color] = None,
        prompt_box: Optional[Sequence[float]] = None) -> np.ndarray:
    """Draw one state of an interaction on a picture.

    Args:
        image (np.ndarray): ``H x W x 3`` uint8 RGB picture.
        mask (np.ndarray, optional): ``H x W`` mask (bool or 0/1), filled
            half-transparent and outlined. None draws no mask.
        clicks (Sequence[Sequence[float]]): ``(x, y, is_positive)`` in
            pixels of the picture, oldest first; positive clicks green,
            negative red, the newest one larger.
        box (Sequence[float], optional): ``(x0, y0, x1, y1)`` window to
            outline (SAM-REF's PatchDiff window), in picture pixels.
        caption (str): Text written in the top-left corner.
        mask_color (tuple[int, int, int], optional): RGB of the mask; by
            default :func:`pick_mask_color` of the masked pixels.
        prompt_box (Sequence[float], optional): ``(x0, y0, x1, y1)`` box
            prompt, drawn as a solid rectangle in the positive clicks'
            colour, in picture pixels.

    Returns:
        np.ndarray: The ``H x W x 3`` uint8 RGB panel.

    Raises:
        ValueError: The picture, mask, clicks or box are malformed.
    """
    check_image(image)
    height, width = image.shape[:2]
    line_width = _line_width(height, width)
    canvas = image.copy()
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (height, width):
            raise ValueError(f'mask of shape {mask.shape} does not match the '
                             f'{height} x {width} picture')
        mask = mask.astype(bool)
        if mask.any():
            color = tuple(mask_color or pick_mask_color(image, mask))
            tinted = cv2.addWeighted(canvas, 1 - MASK_ALPHA,
                                     np.full_like(canvas, color), MASK_ALPHA,
                                     0)
            np.copyto(canvas, tinted, where=mask[..., None])
            contours, _ = cv2.findContours(
                mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, color, line_width,
                             cv2.LINE_AA)
    if prompt_box is not None:
        x0, y0, x1, y1 = _box_corners(prompt_box, height, width)
        cv2.rectangle(canvas, (round(x0), round(y0)), (round(x1), round(y1)),
                      POSITIVE_COLOR, 2 * line_width, cv2.LINE_AA)
    if box is not None:
        corners = _box_corners(box, height, width)
        _draw_dashed_box(canvas, corners, BOX_COLOR, 2 * line_width)
    if len(clicks):
        points = np.asarray([c[:2] for c in clicks], dtype=np.float64)
        if points.ndim != 2 or not np.isfinite(points).all():
            raise ValueError('clicks must be (x, y, is_positive) triples of '
                             'finite numbers')
        radius = max(3.0, 0.018 * np.sqrt(height * width))
        for index, (click, point) in enumerate(zip(clicks, points)):
            scale = 1.4 if index == len(clicks) - 1 else 1.0
            # OpenCV draws at sub-pixel positions in 1/16 pixel units
            center = tuple(int(round(v * 16)) for v in point)
            size = int(round(radius * scale * 16))
            color = POSITIVE_COLOR if click[2] else NEGATIVE_COLOR
            cv2.circle(canvas, center, size, color, -1, cv2.LINE_AA, 4)
            cv2.circle(canvas, center, size, (255, 255, 255), line_width,
                       cv2.LINE_AA, 4)
    if caption:
        visualizer = Visualizer(image=canvas)
        visualizer.draw_texts(
            caption,
            np.array([3, 3]),
            font_sizes=_text_size(height, width),
            colors='white',
            bboxes=dict(facecolor='black', alpha=0.6, pad=2, edgecolor='none'))
        canvas = visualizer.get_image()
    return canvas


def draw_title(text: str, width: int, height: int = 24) -> np.ndarray:
    """A white strip with a line of black text.

    Args:
        text (str): The title.
        width (int): Strip width in pixels.
        height (int): Strip height in pixels. Defaults to 24.

    Returns:
        np.ndarray: ``height x width x 3`` uint8 RGB strip.
    """
    visualizer = Visualizer(
        image=np.full((height, max(width, 1), 3), 255, dtype=np.uint8))
    visualizer.draw_texts(
        text,
        np.array([4, height / 2]),
        font_sizes=max(8, int(height * 0.45)),
        colors='black',
        vertical_alignments='center')
    return visualizer.get_image()


def draw_panel_grid(rows: Sequence[Sequence[np.ndarray]],
                    row_titles: Optional[Sequence[str]] = None,
                    gap: int = 4) -> np.ndarray:
    """Lay panels out in rows on a white background.

    Panels of different sizes are aligned top-left in cells as large as
    the largest panel; each row may carry a title strip above it.

    Args:
        rows (Sequence[Sequence[np.ndarray]]): Rows of ``H x W x 3`` uint8
            RGB panels (e.g. from :func:`draw_interaction`).
        row_titles (Sequence[str], optional): One title per row.
        gap (int): White pixels between panels. Defaults to 4.

    Returns:
        np.ndarray: The ``H x W x 3`` uint8 RGB grid.

    Raises:
        ValueError: No panel, a malformed panel, or a title count that
            differs from the row count.
    """
    if not rows or not all(len(row) for row in rows):
        raise ValueError('draw_panel_grid needs at least one panel per row')
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f'{len(row_titles)} row titles for {len(rows)} rows')
    for row in rows:
        for panel in row:
            check_image(panel)
    cell_h = max(p.shape[0] for row in rows for p in row)
    cell_w = max(p.shape[1] for row in rows for p in row)
    columns = max(len(row) for row in rows)
    width = columns * cell_w + (columns + 1) * gap
    strips = []
    for index, row in enumerate(rows):
        if row_titles is not None:
            strips.append(draw_title(row_titles[index], width))
        strip = np.full((cell_h + 2 * gap, width, 3), 255, dtype=np.uint8)
        for col, panel in enumerate(row):
            x = gap + col * (cell_w + gap)
            strip[gap:gap + panel.shape[0], x:x + panel.shape[1]] = panel
        strips.append(strip)
    return np.concatenate(strips, axis=0)


def draw_click_progress(
        image: np.ndarray,
        gt: np.ndarray,
        steps: Sequence[dict],
        clicks: Sequence[Sequence[float]],
        title: str = '',
        max_side: int = 480,
        prompt_box: Optional[Sequence[float]] = None) -> np.ndarray:
    """One object's interaction: the ground truth, then the mask after
    chosen clicks, side by side.

    Args:
        image (np.ndarray): ``H x W x 3`` uint8 RGB picture.
        gt (np.ndarray): ``H x W`` ground truth (1 object, 0 background,
            -1 ignored).
        steps (Sequence[dict]): One per panel: ``click`` (the 1-based
            interaction number), ``mask`` (``H x W`` bool), ``iou`` and
            optionally ``box`` (``(x0, y0, x1, y1)`` refinement window of
            that interaction).
        clicks (Sequence[Sequence[float]]): All clicks ``(x, y,
            is_positive)``; panel ``k`` draws the first ``k`` (the first
            ``k - 1`` after a box prompt).
        title (str): Row title, e.g. the image and object.
        max_side (int): Panels are drawn at most this large. Defaults to
            480.
        prompt_box (Sequence[float], optional): The object's box prompt,
            its first interaction (the box-first protocol), drawn on every
            panel. Defaults to None.

    Returns:
        np.ndarray: ``h x w x 3`` uint8 RGB picture.
    """
    check_image(image)
    gt = np.asarray(gt)
    if gt.shape != image.shape[:2]:
        raise ValueError(f'ground truth of shape {gt.shape} does not match '
                         f'the {image.shape[0]} x {image.shape[1]} picture')
    scale = min(1.0, max_side / max(image.shape[:2]))
    size = (max(1, round(image.shape[1] * scale)),
            max(1, round(image.shape[0] * scale)))

    def shrink(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(
            mask.astype(np.uint8), size,
            interpolation=cv2.INTER_NEAREST).astype(bool)

    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) \
        if scale < 1 else image
    color = pick_mask_color(small, shrink(gt == 1))
    panels = [
        draw_interaction(
            small, shrink(gt == 1), caption='ground truth', mask_color=color)
    ]
    first_box = prompt_box is not None
    if first_box:
        prompt_box = tuple(v * scale for v in prompt_box)
    for step in steps:
        k = step['click']
        box = step.get('box')
        shown = clicks[:k - first_box]
        name = (f'box + {len(shown)} click' + 's' * (len(shown) > 1)
                if len(shown) else 'box') if first_box else f'click {k}'
        caption = f'{name}  IoU {step["iou"]:.3f}'
        if box is not None:
            box = tuple(v * scale for v in box)
            caption += '  (PatchDiff)'
        panels.append(
            draw_interaction(
                small,
                shrink(step['mask']),
                [(x * scale, y * scale, p) for x, y, p in shown],
                box,
                caption,
                mask_color=color,
                prompt_box=prompt_box))
    return draw_panel_grid([panels], [title] if title else None)
