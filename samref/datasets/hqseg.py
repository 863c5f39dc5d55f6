# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmseg.registry import DATASETS

from .base import InteractiveSegDataset

# The four validation parts of HQSeg-44K, laid out as HQ-SAM distributes
# them (image folder, mask folder), relative to the data root.
HQSEG_VAL_PARTS: Dict[str, dict] = {
    'DIS-VD':
    dict(img_path='DIS5K/DIS-VD/im', seg_map_path='DIS5K/DIS-VD/gt'),
    'ThinObject5K':
    dict(
        img_path='thin_object_detection/ThinObject5K/images_test',
        seg_map_path='thin_object_detection/ThinObject5K/masks_test'),
    'COIFT':
    dict(
        img_path='thin_object_detection/COIFT/images',
        seg_map_path='thin_object_detection/COIFT/masks'),
    'HRSOD':
    dict(
        img_path='thin_object_detection/HRSOD/images',
        seg_map_path='thin_object_detection/HRSOD/masks_max255'),
}


@DATASETS.register_module()
class HQSeg44KDataset(InteractiveSegDataset):
    """HQSeg-44K validation (1537 images): DIS-VD, ThinObject5K-TE, COIFT
    and HRSOD, together or apart.

    Masks are 0..255 grey images, values above 127 are the object. Each item
    records its part as ``subset``, so tables report every part and the
    whole.

    Args:
        data_root (str): The folder holding ``DIS5K/`` and
            ``thin_object_detection/``.
        parts (str | Sequence[str], optional): Part or parts to read, all
            four when None.
        part_prefixes (dict, optional): Folders of the parts, when they are
            not laid out as in :data:`HQSEG_VAL_PARTS`.
        **kwargs: See :class:`InteractiveSegDataset`.
    """
    METAINFO = dict(dataset_name='HQSeg-44K')
    LAYOUT = dict(
        data_prefix=dict(img_path='', seg_map_path=''),
        img_suffix=('.jpg', '.png'),
        seg_map_suffix='.png',
        mask_format='grey')

    def __init__(self,
                 data_root: str = '',
                 parts: Union[str, Sequence[str], None] = None,
                 part_prefixes: Optional[Dict[str, dict]] = None,
                 **kwargs) -> None:
        self.part_prefixes = dict(part_prefixes or HQSEG_VAL_PARTS)
        if parts is None:
            parts = list(self.part_prefixes)
        elif isinstance(parts, str):
            parts = [parts]
        if not parts or len(set(parts)) != len(parts):
            raise ValueError('parts must name HQSeg-44K parts, each once, '
                             f'got {parts!r}')
        self.parts = list(parts)
        unknown = set(self.parts) - set(self.part_prefixes)
        if unknown:
            raise KeyError(f'unknown HQSeg-44K parts {sorted(unknown)}; '
                           f'choose from {sorted(self.part_prefixes)}')
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Pair images and masks of every selected part.

        Returns:
            list[dict]: One item per image, ``subset`` set to its part.
        """
        items = []
        for part in self.parts:
            prefix = self.part_prefixes[part]
            items += self.pair_by_stem(
                osp.join(self.data_root, prefix['img_path']),
                osp.join(self.data_root, prefix['seg_map_path']), part)
        return items
