# Copyright (c) samref contributors. All rights reserved.
import logging
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Set, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from mmseg.registry import DATASETS
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from .base import (DatasetLayoutError, InteractiveSegDataset, read_list_file,
                   require_dir, require_file)


def polygon_fault(polygon: list) -> Optional[str]:
    """Why a polygon of a ``segmentation`` is broken, None when it is fine.

    Args:
        polygon (list): Flat ``[x1, y1, x2, y2, ...]`` coordinates.

    Returns:
        str | None: The fault, worded as a count's noun.
    """
    if not isinstance(polygon, list) or len(polygon) % 2:
        return 'malformed polygons'
    if len(polygon) < 6:
        return 'polygons with fewer than 3 points'
    x, y = np.asarray(polygon, np.float64).reshape(-1, 2).T
    if np.dot(x, np.roll(y, -1)) == np.dot(y, np.roll(x, -1)):
        return 'polygons of zero area'
    return None


def usable_segmentation(segmentation: Union[list, dict, None],
                        faults: Counter) -> Union[list, dict, None]:
    """The usable part of an annotation's ``segmentation``.

    Broken polygons (see :func:`polygon_fault`) are left out, the others
    kept. RLE is kept when it has ``counts`` and ``size`` and a non-zero
    area. Every fault is counted in ``faults``.

    Args:
        segmentation (list | dict | None): As in the annotation file.
        faults (Counter): Counts of faults, updated.

    Returns:
        list | dict | None: The usable polygons or the RLE; None when
        nothing is usable.
    """
    if not segmentation:
        faults['missing or empty segmentations'] += 1
        return None
    if isinstance(segmentation, list):
        kept = []
        for polygon in segmentation:
            fault = polygon_fault(polygon)
            if fault:
                faults[fault] += 1
            else:
                kept.append(polygon)
        return kept or None
    if not isinstance(segmentation, dict) or \
            'counts' not in segmentation or 'size' not in segmentation:
        faults['malformed segmentations'] += 1
        return None
    counts = segmentation['counts']
    area = sum(counts[1::2]) if isinstance(counts, list) else \
        mask_utils.area(segmentation)
    if area <= 0:
        faults['empty RLEs'] += 1
        return None
    return segmentation


@DATASETS.register_module()
class COCOLVISDataset(InteractiveSegDataset):
    """COCO 2017 and LVIS v1 instances for training, read with pycocotools.

    One item per image with at least one usable object; its objects are
    the image's COCO annotations followed by its LVIS ones (LVIS v1 images
    are COCO 2017 train and val images, found by image id). Crowd
    annotations are left out. Broken polygons (fewer than 3 points, an odd
    number of coordinates, zero area), empty RLE and malformed
    segmentations are dropped when the files are read; an annotation with
    nothing usable left is not used. One warning per annotation file counts
    what was dropped and names an example annotation.

    Each object is::

        dict(segmentation=<polygons or RLE as in the file>,
             source='coco' | 'lvis', click_gamma=<gamma of the source>,
             ann_id=<annotation id>, height=<image height>,
             width=<image width>, mask_format='coco', instance_id=None,
             seg_map_path=<the annotation file, for messages>)

    The image size comes from the annotation file and is stored in every
    object, so that an object decodes on its own (``LoadObjectMasks``, the
    LVIS overlap filter of ``SampleObject``); ``LoadObjectMasks`` checks it
    against the image read. Train with ``SampleObject`` (one object per
    sample, LVIS objects that overlap COCO ones dropped) and
    ``SkipBadSample``.

    An image's folder is the last-but-one part of its ``coco_url`` (e.g.
    ``train2017``), looked up in ``img_dirs``; its file name is the last
    part. Both COCO 2017 and LVIS v1 files give ``coco_url`` for every
    image.

    Args:
        data_root (str): The COCO folder. Defaults to ``'data/coco'``.
        coco_ann_file (str, optional): COCO instances file, relative to
            ``data_root``; None to use LVIS only. Defaults to
            ``'annotations/instances_train2017.json'``.
        lvis_ann_file (str, optional): LVIS v1 file, relative to
            ``data_root``, e.g. ``'../lvis/lvis_v1_train.json'``; None (the
            default) to use COCO only.
        img_dirs (dict, optional): COCO image folder names (from
            ``coco_url``) mapped to folders relative to ``data_root``.
            Defaults to ``dict(train2017='train2017', val2017='val2017')``.
        coco_click_gamma (float): Click-number decay of COCO objects
            (FocSAM: 0.6). Defaults to 0.6.
        lvis_click_gamma (float): Click-number decay of LVIS objects
            (FocSAM: 0.9). Defaults to 0.9.
        skip_image_ids (str, optional): Text file, relative to
            ``data_root``, of image ids to leave out, one per line: the
            place for the invalid-image lists of FocSAM / InterFormer.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='COCO+LVIS')
    LAYOUT = dict(
        data_prefix=dict(img_path=''),
        img_suffix='.jpg',
        seg_map_suffix='.json',
        mask_format='coco')

    def __init__(self,
                 data_root: str = 'data/coco',
                 coco_ann_file: Optional[
                     str] = 'annotations/instances_train2017.json',
                 lvis_ann_file: Optional[str] = None,
                 img_dirs: Optional[Dict[str, str]] = None,
                 coco_click_gamma: float = 0.6,
                 lvis_click_gamma: float = 0.9,
                 skip_image_ids: Optional[str] = None,
                 **kwargs) -> None:
        self.sources = [(source, ann_file, gamma)
                        for source, ann_file, gamma in (('coco', coco_ann_file,
                                                         coco_click_gamma),
                                                        ('lvis', lvis_ann_file,
                                                         lvis_click_gamma))
                        if ann_file]
        if not self.sources:
            raise ValueError('COCOLVISDataset needs coco_ann_file, '
                             'lvis_ann_file or both')
        self.img_dirs = dict(
            img_dirs or dict(train2017='train2017', val2017='val2017'))
        self.skip_image_ids = skip_image_ids
        super().__init__(data_root=data_root, **kwargs)

    def _read_skip_ids(self) -> Set[int]:
        """The ids of ``skip_image_ids``, empty when it is None."""
        if self.skip_image_ids is None:
            return set()
        path = osp.join(self.data_root, self.skip_image_ids)
        ids = set()
        for line in read_list_file(path):
            if not line.isdigit():
                raise ValueError(f'{path} holds {line!r}, which is not an '
                                 'image id')
            ids.add(int(line))
        return ids

    def _img_path(self, img_info: dict, ann_file: str) -> str:
        """The image file of an image record of ``ann_file``."""
        url = img_info.get('coco_url')
        if not url:
            raise DatasetLayoutError(
                f'image {img_info["id"]} of {ann_file} has no coco_url, '
                'which names its folder and file')
        folder, name = url.split('/')[-2:]
        if folder not in self.img_dirs:
            raise DatasetLayoutError(
                f'image {img_info["id"]} of {ann_file} lies in COCO folder '
                f'{folder!r} ({url}), which img_dirs does not map; it maps '
                f'{sorted(self.img_dirs)}')
        return osp.join(self.data_root, self.img_dirs[folder], name)

    def _read_objects(self, ann_file: str, source: str,
                      click_gamma: float) -> List[Tuple[dict, List[dict]]]:
        """Read the usable objects of one annotation file.

        Args:
            ann_file (str): The file.
            source (str): ``'coco'`` or ``'lvis'``.
            click_gamma (float): Click-number decay of its objects.

        Returns:
            list[tuple[dict, list[dict]]]: Image records and their objects,
            in file order.
        """
        try:
            coco = COCO(ann_file)
        except (AssertionError, ValueError) as error:
            raise ValueError(f'cannot read annotation file {ann_file}: '
                             f'{error}') from None
        faults: Counter = Counter()
        unusable, crowd, example = 0, 0, None
        images = []
        for img_info in coco.dataset.get('images', []):
            objects = []
            for ann in coco.imgToAnns.get(img_info['id'], []):
                if ann.get('iscrowd', 0):
                    crowd += 1
                    continue
                found: Counter = Counter()
                segmentation = usable_segmentation(
                    ann.get('segmentation'), found)
                if found:
                    faults.update(found)
                    example = ann['id'] if example is None else example
                if segmentation is None:
                    unusable += 1
                    continue
                objects.append(
                    dict(
                        segmentation=segmentation,
                        source=source,
                        click_gamma=click_gamma,
                        ann_id=ann['id'],
                        height=img_info['height'],
                        width=img_info['width'],
                        mask_format=self.mask_format,
                        instance_id=None,
                        seg_map_path=ann_file))
            images.append((img_info, objects))
        if faults:
            print_log(
                f'{ann_file}: dropped {sum(faults.values())} broken '
                'segmentation parts (' +
                ', '.join(f'{n} {fault}'
                          for fault, n in sorted(faults.items())) +
                f'); {unusable} annotations had no usable segmentation left '
                f'and are not used; e.g. annotation {example}',
                logger='current',
                level=logging.WARNING)
        print_log(
            f'{ann_file}: {sum(len(o) for _, o in images)} {source} objects '
            f'on {sum(bool(o) for _, o in images)} of its {len(images)} '
            f'images; {crowd} crowd annotations left out',
            logger='current')
        return images

    def load_data_list(self) -> List[dict]:
        """Read the annotation files and group the objects by image.

        Returns:
            list[dict]: One item per image with a usable object, in the
            order the images first appear (COCO file, then LVIS file).

        Raises:
            DatasetLayoutError: An annotation file or an image folder is
                missing, an image cannot be placed in ``img_dirs``, or no
                image has a usable object.
        """
        skip = self._read_skip_ids()
        items: Dict[int, dict] = {}
        checked_dirs: Set[str] = set()
        ann_files = []
        for source, ann_file, click_gamma in self.sources:
            ann_file = require_file(
                osp.normpath(osp.join(self.data_root, ann_file)),
                f'{source.upper()} annotation file')
            ann_files.append(ann_file)
            for img_info, objects in self._read_objects(
                    ann_file, source, click_gamma):
                if not objects or img_info['id'] in skip:
                    continue
                if img_info['id'] not in items:
                    img_path = self._img_path(img_info, ann_file)
                    img_dir = osp.dirname(img_path)
                    if img_dir not in checked_dirs:
                        require_dir(img_dir, 'COCO image')
                        checked_dirs.add(img_dir)
                    items[img_info['id']] = self.make_item(img_path, [])
                items[img_info['id']]['objects'] += objects
        if not items:
            raise DatasetLayoutError(
                f'no image with a usable object in {", ".join(ann_files)}')
        if skip:
            print_log(
                f'left out the images of the {len(skip)} ids in '
                f'{osp.join(self.data_root, self.skip_image_ids)}',
                logger='current')
        return list(items.values())
