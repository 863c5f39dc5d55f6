# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
from typing import Dict, List, Optional

from mmseg.registry import DATASETS

from .base import (DatasetLayoutError, InteractiveSegDataset, files_by_stem,
                   read_list_file, require_dir)


@DATASETS.register_module()
class FocusCutDataset(InteractiveSegDataset):
    """Any benchmark in the FocusCut layout.

    ``<DS>/img/<stem>.jpg``, one mask per object ``<DS>/gt/<stem>#001.png``
    (1 is object, 255 is ignored) and ``<DS>/list/val.txt``. A list line
    names an object (``<stem>#001``) or an image (``<stem>``, meaning all its
    objects); an object listed twice is evaluated once.

    Args:
        data_root (str): The ``<DS>`` folder.
        ann_file (str): The list, relative to ``data_root``. Defaults to
            ``'list/val.txt'``.
        dataset_name (str, optional): Name in tables; the folder's name when
            None.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='FocusCut')
    LAYOUT = dict(
        data_prefix=dict(img_path='img', seg_map_path='gt'),
        img_suffix=('.jpg', '.png'),
        seg_map_suffix='.png',
        mask_format='focuscut')

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'list/val.txt',
                 dataset_name: Optional[str] = None,
                 **kwargs) -> None:
        if dataset_name is None and data_root:
            dataset_name = osp.basename(osp.abspath(data_root))
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            dataset_name=dataset_name,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Group the listed objects by image, in list order.

        Returns:
            list[dict]: One item per image.

        Raises:
            DatasetLayoutError: A folder, a listed image or mask is missing.
        """
        images = files_by_stem(
            require_dir(self.data_prefix['img_path'], 'image'),
            self.img_suffix)
        masks = files_by_stem(
            require_dir(self.data_prefix['seg_map_path'], 'mask'),
            self.seg_map_suffix)
        objects: Dict[str, List[str]] = {}
        for line in read_list_file(self.ann_file):
            stem = line.split('#')[0]
            if stem not in images:
                raise DatasetLayoutError(
                    f'{self.ann_file} lists {line}, but no image {stem} '
                    f'({"/".join(self.img_suffix)}) is in '
                    f'{self.data_prefix["img_path"]}')
            names = [line] if '#' in line else sorted(
                m for m in masks
                if '#' in m and m.split('#')[0] == stem) or [f'{stem}#001']
            for name in names:
                if name not in masks:
                    raise DatasetLayoutError(
                        f'image {images[stem]} has no mask: expected '
                        f'{osp.join(self.data_prefix["seg_map_path"], name)}'
                        f'{self.seg_map_suffix[0]}')
            listed = objects.setdefault(stem, [])
            listed.extend(n for n in names if n not in listed)
        return [
            self.make_item(images[stem], [
                dict(
                    seg_map_path=masks[name],
                    mask_format=self.mask_format,
                    instance_id=None) for name in names
            ]) for stem, names in objects.items()
        ]
