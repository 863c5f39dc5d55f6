# Copyright (c) samref contributors. All rights reserved.
"""Import ``segment_anything`` on machines without a working torchvision.

``segment_anything`` imports four torchvision functions at package import:
``resize`` and ``to_pil_image`` (``utils/transforms.py``) and
``batched_nms`` and ``box_area`` (``automatic_mask_generator.py``). A CPU-only
PyTorch often has no matching torchvision wheel, or one that fails at import.
:func:`import_segment_anything` imports the package with the real torchvision
when it can; otherwise it provides those four functions, with torchvision's
semantics, for the duration of the import only, so no other library ever
sees a partial ``torchvision`` in ``sys.modules``.
"""
import importlib
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator, List, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# torchvision's ``InterpolationMode`` values map onto these PIL filters.
_PIL_FILTERS = {
    'nearest': Image.NEAREST,
    'bilinear': Image.BILINEAR,
    'bicubic': Image.BICUBIC,
}


def to_pil_image(pic: Union[np.ndarray, torch.Tensor]) -> Image.Image:
    """Convert an HWC/HW array or a CHW tensor to a PIL image.

    Follows ``torchvision.transforms.functional.to_pil_image``: float tensors
    are taken to lie in [0, 1] and scaled to uint8; numpy arrays keep their
    dtype and 3/4-channel uint8 arrays become RGB/RGBA images.

    Args:
        pic (np.ndarray | torch.Tensor): ``H x W x C`` or ``H x W`` array, or
            ``C x H x W`` / ``H x W`` tensor.

    Returns:
        PIL.Image.Image: The image.
    """
    if isinstance(pic, torch.Tensor):
        if pic.ndim not in (2, 3):
            raise ValueError(
                f'pic should be 2 or 3 dimensional, got {pic.ndim} dims')
        if pic.ndim == 3:
            pic = pic.permute(1, 2, 0)
        if pic.is_floating_point():
            pic = pic.mul(255).byte()
        pic = pic.cpu().numpy()
    if not isinstance(pic, np.ndarray):
        raise TypeError(
            f'pic should be a tensor or an ndarray, got {type(pic)}')
    if pic.ndim == 3 and pic.shape[2] == 1:
        pic = pic[:, :, 0]
    if pic.ndim == 2:
        return Image.fromarray(pic)
    if pic.ndim != 3 or pic.shape[2] not in (3, 4):
        raise ValueError(f'cannot convert an array of shape {pic.shape} '
                         'to a PIL image')
    if pic.dtype != np.uint8:
        raise TypeError('only uint8 arrays with 3 or 4 channels can be '
                        f'converted to RGB/RGBA images, got {pic.dtype}')
    return Image.fromarray(pic, mode='RGB' if pic.shape[2] == 3 else 'RGBA')


def _output_size(height: int, width: int,
                 size: Union[int, Sequence[int]]) -> List[int]:
    """``[h, w]`` for a resize to ``size`` (an int matches the short side)."""
    if isinstance(size, int) or len(size) == 1:
        short_target = size if isinstance(size, int) else size[0]
        short, long = min(height, width), max(height, width)
        long_target = int(short_target * long / short)
        if height <= width:
            return [short_target, long_target]
        return [long_target, short_target]
    return [int(size[0]), int(size[1])]


def resize(img: Union[Image.Image, torch.Tensor],
           size: Union[int, Sequence[int]],
           interpolation: str = 'bilinear',
           max_size: None = None,
           antialias: bool = True) -> Union[Image.Image, torch.Tensor]:
    """Resize a PIL image or a ``... x H x W`` tensor to ``size`` (h, w).

    As torchvision does, a PIL image is resized by PIL itself (whose
    bilinear filter is antialiased) and a tensor by ``F.interpolate``.

    Args:
        img (PIL.Image.Image | torch.Tensor): The image.
        size (int | Sequence[int]): ``(h, w)``, or the target of the short
            side.
        interpolation (str): ``'nearest'``, ``'bilinear'`` or ``'bicubic'``.
            Defaults to ``'bilinear'``.
        max_size (None): Not supported; kept for signature compatibility.
        antialias (bool): Antialias tensor resizing. Defaults to True.

    Returns:
        PIL.Image.Image | torch.Tensor: The resized image.
    """
    if max_size is not None:
        raise ValueError('max_size is not supported without torchvision')
    interpolation = getattr(interpolation, 'value', interpolation)
    if interpolation not in _PIL_FILTERS:
        raise ValueError(f'unsupported interpolation {interpolation!r}')
    if isinstance(img, Image.Image):
        height, width = _output_size(img.height, img.width, size)
        return img.resize((width, height), _PIL_FILTERS[interpolation])
    if not isinstance(img, torch.Tensor):
        raise TypeError(f'img should be a PIL image or a tensor, '
                        f'got {type(img)}')
    height, width = _output_size(img.shape[-2], img.shape[-1], size)
    batch = img.reshape(-1, *img.shape[-3:]) if img.ndim > 3 else img[None]
    dtype = batch.dtype
    out = F.interpolate(
        batch.float(), (height, width),
        mode=interpolation,
        align_corners=None if interpolation == 'nearest' else False,
        antialias=antialias and interpolation != 'nearest')
    if not dtype.is_floating_point:
        out = out.round().clamp(0, 255)
    return out.to(dtype).reshape(*img.shape[:-2], height, width)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``N x 4`` boxes in ``(x1, y1, x2, y2)`` format.

    Args:
        boxes (torch.Tensor): The boxes.

    Returns:
        torch.Tensor: ``N`` areas.
    """
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one box against ``N`` boxes."""
    top_left = torch.maximum(box[:2], boxes[:, :2])
    bottom_right = torch.minimum(box[2:], boxes[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
    union = box_area(box[None])[0] + box_area(boxes) - inter
    return inter / union


def nms(boxes: torch.Tensor, scores: torch.Tensor,
        iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    Args:
        boxes (torch.Tensor): ``N x 4`` boxes ``(x1, y1, x2, y2)``.
        scores (torch.Tensor): ``N`` scores.
        iou_threshold (float): Boxes whose IoU with a kept box is strictly
            greater than this are discarded.

    Returns:
        torch.Tensor: Indices of the kept boxes, by decreasing score.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for rank, index in enumerate(order.tolist()):
        if suppressed[rank]:
            continue
        keep.append(index)
        rest = order[rank + 1:]
        suppressed[rank + 1:] |= _box_iou(boxes[index],
                                          boxes[rest]) > iou_threshold
    return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """Non-maximum suppression within each category, as torchvision's.

    Args:
        boxes (torch.Tensor): ``N x 4`` boxes ``(x1, y1, x2, y2)``.
        scores (torch.Tensor): ``N`` scores.
        idxs (torch.Tensor): ``N`` category indices; boxes of different
            categories never suppress each other.
        iou_threshold (float): See :func:`nms`.

    Returns:
        torch.Tensor: Indices of the kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty((0, ), dtype=torch.int64, device=boxes.device)
    # Shift each category to its own region so boxes never overlap across
    # categories, then run a single NMS.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _fallback_modules() -> dict:
    """The minimal ``torchvision`` module tree segment_anything imports."""
    root = ModuleType('torchvision')
    transforms = ModuleType('torchvision.transforms')
    functional = ModuleType('torchvision.transforms.functional')
    ops = ModuleType('torchvision.ops')
    boxes = ModuleType('torchvision.ops.boxes')
    functional.resize = resize
    functional.to_pil_image = to_pil_image
    boxes.batched_nms = batched_nms
    boxes.box_area = box_area
    boxes.nms = nms
    root.transforms, transforms.functional = transforms, functional
    root.ops, ops.boxes = ops, boxes
    return {
        module.__name__: module
        for module in (root, transforms, functional, ops, boxes)
    }


def torchvision_available() -> bool:
    """Whether a working torchvision can be imported.

    Returns:
        bool: False when the import fails, for any reason (a missing package
        or a build that does not match the installed torch).
    """
    try:
        importlib.import_module('torchvision')
    except Exception:  # noqa: BLE001 - broken builds raise RuntimeError
        return False
    return True


@contextmanager
def torchvision_fallback() -> Iterator[None]:
    """Make the fallback torchvision importable inside the ``with`` block.

    Whatever ``sys.modules`` held under the replaced names before is put
    back on exit.
    """
    modules = _fallback_modules()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def import_segment_anything() -> ModuleType:
    """Import ``segment_anything``, with the fallback when it is needed.

    Returns:
        ModuleType: The ``segment_anything`` package.
    """
    if 'segment_anything' in sys.modules or torchvision_available():
        return importlib.import_module('segment_anything')
    with torchvision_fallback():
        return importlib.import_module('segment_anything')
