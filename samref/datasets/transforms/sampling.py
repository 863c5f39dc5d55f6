# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, List

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..mask_formats import MaskFileError
from .loading import load_object_mask, object_name


@TRANSFORMS.register_module()
class SampleObject(BaseTransform):
    """Keep one object of an image, chosen uniformly at random, for
    training with one object per sample.

    Put it before ``LoadObjectMasks``, which then loads only that object.
    The choice uses numpy's global random state, which mmengine seeds per
    dataloader worker.

    LVIS overlap filter (FocSAM): objects are taken in order, first the
    objects of other sources (COCO), then the LVIS objects (``source ==
    'lvis'``) one by one; an LVIS object that covers the union of the
    objects already taken with more than ``max_overlap`` of its own area is
    dropped before the choice. This needs the masks of the image's objects,
    so it decodes all of them whenever an LVIS object has another object
    before it (about 0.6 ms per object at COCO's 640 x 480 on one CPU core:
    some 10 ms for a typical COCO+LVIS image, 25 ms for one with 40
    objects, in each dataloader worker); other samples cost nothing.

    Required keys: ``objects`` and ``img_path``.

    Modified keys: ``objects`` (a list of the chosen object).

    Added keys: ``click_gamma``, the chosen object's click-number decay
    (its ``click_gamma``, else ``default_click_gamma``), and ``source``, the
    annotation set it comes from (its ``source``, e.g. ``'coco'`` or
    ``'lvis'``; None when it names none), for models whose training
    settings differ by source (FocSAM's refine click on LVIS).

    Args:
        max_overlap (float): Largest share of an LVIS object's area that
            may lie in objects taken before it. Defaults to 0.5.
        default_click_gamma (float): ``click_gamma`` of objects that carry
            none. Defaults to 0.6.
    """

    def __init__(self,
                 max_overlap: float = 0.5,
                 default_click_gamma: float = 0.6) -> None:
        self.max_overlap = max_overlap
        self.default_click_gamma = default_click_gamma

    def drop_overlapping(self, objects: List[dict]) -> List[dict]:
        """Apply the LVIS overlap filter.

        Args:
            objects (list[dict]): The objects of an image.

        Returns:
            list[dict]: The objects taken: the non-LVIS ones, then the LVIS
            ones that pass, in order.

        Raises:
            MaskFileError: A mask cannot be decoded or two masks of the
                image differ in size.
        """
        others = [obj for obj in objects if obj.get('source') != 'lvis']
        lvis = [obj for obj in objects if obj.get('source') == 'lvis']
        if not lvis or len(objects) < 2:
            return objects
        raw: Dict[str, np.ndarray] = {}
        taken: List[dict] = []
        union = None
        for obj in others + lvis:
            mask = load_object_mask(obj, raw) == 1
            if union is None:
                union = np.zeros_like(mask)
            elif mask.shape != union.shape:
                raise MaskFileError(
                    f'{object_name(obj)} is {mask.shape[1]}x{mask.shape[0]} '
                    f'but {object_name(taken[0])} of the same image is '
                    f'{union.shape[1]}x{union.shape[0]}')
            if obj.get('source') == 'lvis' and \
                    (mask & union).sum() > self.max_overlap * mask.sum():
                continue
            taken.append(obj)
            union |= mask
        return taken

    def transform(self, results: dict) -> dict:
        """Choose the object.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict: ``results`` with one object, ``click_gamma`` and
            ``source``.

        Raises:
            MaskFileError: The image has no object, or see
                :meth:`drop_overlapping`.
        """
        if not results['objects']:
            raise MaskFileError(f'image {results["img_path"]} has no object')
        candidates = self.drop_overlapping(results['objects'])
        chosen = candidates[np.random.randint(len(candidates))]
        results['objects'] = [chosen]
        click_gamma = chosen.get('click_gamma')
        results['click_gamma'] = self.default_click_gamma \
            if click_gamma is None else click_gamma
        results['source'] = chosen.get('source')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_overlap={self.max_overlap}, '
                f'default_click_gamma={self.default_click_gamma})')
