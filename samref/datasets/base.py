# Copyright (c) samref contributors. All rights reserved.
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from .mask_formats import check_mask_format

# Class names and colours of the per-object segmentation targets.
SEG_CLASSES = ('background', 'object')
SEG_PALETTE = [[0, 0, 0], [255, 64, 0]]


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder, list file or mask that the layout requires is
    missing."""


def require_dir(path: str, what: str) -> str:
    """Return ``path`` or raise an error that names it and the setting.

    Args:
        path (str): Folder that must exist.
        what (str): What the folder holds, for the message.

    Returns:
        str: ``path``.
    """
    if not osp.isdir(path):
        raise DatasetLayoutError(
            f'{what} folder {path} does not exist; check data_root and '
            'data_prefix in the dataset config')
    return path


def require_file(path: str, what: str) -> str:
    """Return ``path`` or raise an error that names it and the setting."""
    if not osp.isfile(path):
        raise DatasetLayoutError(
            f'{what} {path} does not exist; check data_root and the '
            'list/annotation settings in the dataset config')
    return path


def read_list_file(path: str) -> List[str]:
    """Non-empty, stripped lines of a list file such as ``val.txt``."""
    with open(require_file(path, 'list file'), encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def files_by_stem(folder: str, suffixes: Sequence[str]) -> Dict[str, str]:
    """Map file stems to paths for the files of ``folder`` with a suffix.

    Args:
        folder (str): The folder (not searched recursively).
        suffixes (Sequence[str]): Accepted suffixes, case-insensitive.

    Returns:
        dict[str, str]: ``{stem: path}``, sorted by stem.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() in suffixes and osp.isfile(osp.join(folder, name)):
            if stem in found:
                raise DatasetLayoutError(
                    f'{folder} holds two files named {stem} with accepted '
                    f'suffixes {suffixes}: {osp.basename(found[stem])} and '
                    f'{name}')
            found[stem] = osp.join(folder, name)
    return found


@DATASETS.register_module()
class InteractiveSegDataset(BaseDataset):
    """Images and object masks for click-based interactive segmentation.

    One data item is one image with all its objects, so that the image
    embedding is computed once per image. Each item is::

        dict(img_path=..., dataset_name=..., subset=...,
             objects=[dict(seg_map_path=..., mask_format=...,
                           instance_id=...), ...])

    and ``LoadObjectMasks`` turns ``objects`` into ``gt_object_masks``.
    This class reads the common layout of an image folder and a mask folder
    whose files share stems (GrabCut, Berkeley, DAVIS, COCO-MVal, HQSeg-44K
    parts); subclasses set the folder names and the mask format, and other
    layouts override :meth:`load_data_list`.

    Args:
        data_root (str): Root folder of the dataset.
        data_prefix (dict, optional): ``img_path`` and ``seg_map_path``
            folders, relative to ``data_root``.
        img_suffix (str | Sequence[str], optional): Image suffixes.
        seg_map_suffix (str | Sequence[str], optional): Mask suffixes.
        mask_format (str, optional): How masks are decoded, a key of
            ``samref.datasets.mask_formats.MASK_DECODERS`` (or of
            ``ANNOTATION_DECODERS`` for datasets whose objects carry their
            annotation).
        dataset_name (str, optional): Name in tables; the class's
            ``METAINFO['dataset_name']`` when None.
        subset (str, optional): Name of a part of the dataset, reported
            separately in tables.
        **kwargs: Other arguments of ``mmengine.dataset.BaseDataset``
            (``pipeline``, ``indices``, ``serialize_data``, ...).

    Layout settings left None take the class's ``LAYOUT`` defaults.
    """
    METAINFO: dict = dict(dataset_name='custom')
    # Defaults of the layout settings; subclasses describe their layout here.
    LAYOUT: dict = dict(
        data_prefix=dict(img_path='img', seg_map_path='gt'),
        img_suffix=('.jpg', '.png'),
        seg_map_suffix='.png',
        mask_format='nonzero')

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 img_suffix: Union[str, Sequence[str], None] = None,
                 seg_map_suffix: Union[str, Sequence[str], None] = None,
                 mask_format: Optional[str] = None,
                 dataset_name: Optional[str] = None,
                 subset: Optional[str] = None,
                 **kwargs) -> None:
        layout = self.LAYOUT
        self.img_suffix = self._as_tuple(img_suffix or layout['img_suffix'])
        self.seg_map_suffix = self._as_tuple(seg_map_suffix
                                             or layout['seg_map_suffix'])
        self.mask_format = check_mask_format(mask_format
                                             or layout['mask_format'])
        self.subset = subset
        # Set before the data list is read; kept out of ``metainfo``, whose
        # string values mmengine tries to open as files.
        self._dataset_name = dataset_name or self.METAINFO['dataset_name']
        super().__init__(
            data_root=data_root,
            data_prefix=dict(data_prefix or layout['data_prefix']),
            **kwargs)
        self._metainfo['dataset_name'] = self._dataset_name
        # The two classes of the training targets (``gt_sem_seg``: 0
        # background, 1 the sampled object), for mmseg's visualizer and its
        # tools (browse_dataset.py).
        self._metainfo.setdefault('classes', SEG_CLASSES)
        self._metainfo.setdefault('palette', SEG_PALETTE)

    @staticmethod
    def _as_tuple(suffix: Union[str, Sequence[str]]) -> Tuple[str, ...]:
        return (suffix, ) if isinstance(suffix, str) else tuple(suffix)

    @property
    def dataset_name(self) -> str:
        """Name of the dataset in tables and results."""
        return self._dataset_name

    def make_item(self,
                  img_path: str,
                  objects: List[dict],
                  subset: Optional[str] = None) -> dict:
        """A data item in the layout documented above.

        Args:
            img_path (str): The image.
            objects (list[dict]): Its objects.
            subset (str, optional): Its part of the dataset; the dataset's
                ``subset`` setting when None.

        Returns:
            dict: The item.
        """
        return dict(
            img_path=img_path,
            dataset_name=self.dataset_name,
            subset=subset or self.subset,
            objects=objects)

    def pair_by_stem(
            self,
            img_dir: str,
            mask_dir: str,
            subset: Optional[str] = None,
            img_suffix: Union[str, Sequence[str], None] = None,
            seg_map_suffix: Union[str, Sequence[str],
                                  None] = None) -> List[dict]:
        """Pair the images and masks of two folders by file stem.

        Args:
            img_dir (str): Image folder.
            mask_dir (str): Mask folder; may be ``img_dir`` when images and
                masks have different suffixes.
            subset (str, optional): Part of the dataset the folders hold.
            img_suffix (str | Sequence[str], optional): Image suffixes; the
                dataset's ``img_suffix`` when None.
            seg_map_suffix (str | Sequence[str], optional): Mask suffixes;
                the dataset's ``seg_map_suffix`` when None.

        Returns:
            list[dict]: One item per image, with its one object.

        Masks without an image are left out, with a warning.

        Raises:
            DatasetLayoutError: A folder is missing or empty, or an image has
                no mask.
        """
        img_suffix = self._as_tuple(img_suffix or self.img_suffix)
        seg_map_suffix = self._as_tuple(seg_map_suffix or self.seg_map_suffix)
        images = files_by_stem(require_dir(img_dir, 'image'), img_suffix)
        masks = files_by_stem(require_dir(mask_dir, 'mask'), seg_map_suffix)
        if not images:
            raise DatasetLayoutError(
                f'no image ({"/".join(img_suffix)}) in {img_dir}')
        items = []
        for stem, img_path in images.items():
            if stem not in masks:
                raise DatasetLayoutError(
                    f'image {img_path} has no mask: expected '
                    f'{osp.join(mask_dir, stem)}{seg_map_suffix[0]}')
            items.append(
                self.make_item(img_path, [
                    dict(
                        seg_map_path=masks[stem],
                        mask_format=self.mask_format,
                        instance_id=None)
                ], subset))
        orphans = sorted(set(masks) - set(images))
        if orphans:
            print_log(
                f'{len(orphans)} masks in {mask_dir} have no image and are '
                f'not evaluated, e.g. {masks[orphans[0]]}',
                logger='current',
                level=logging.WARNING)
        return items

    def load_data_list(self) -> List[dict]:
        """Read the image/mask folder pair of ``data_prefix``.

        Returns:
            list[dict]: One item per image.
        """
        return self.pair_by_stem(self.data_prefix['img_path'],
                                 self.data_prefix['seg_map_path'])
