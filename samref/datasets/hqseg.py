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


def _same_folder_part(folder: str) -> dict:
    """A part whose ``.jpg`` images and ``.png`` masks share a folder."""
    return dict(
        img_path=folder,
        seg_map_path=folder,
        img_suffix='.jpg',
        seg_map_suffix='.png')


# The six training parts of HQSeg-44K, laid out as HQ-SAM distributes
# them, relative to the data root. A part may give its own ``img_suffix``
# and ``seg_map_suffix``.
HQSEG_TRAIN_PARTS: Dict[str, dict] = {
    'DIS5K-TR':
    dict(img_path='DIS5K/DIS-TR/im', seg_map_path='DIS5K/DIS-TR/gt'),
    'ThinObject5K-TR':
    dict(
        img_path='thin_object_detection/ThinObject5K/images_train',
        seg_map_path='thin_object_detection/ThinObject5K/masks_train'),
    'FSS-1000':
    _same_folder_part('cascade_psp/fss_all'),
    'ECSSD':
    _same_folder_part('cascade_psp/ecssd'),
    'MSRA10K':
    _same_folder_part('cascade_psp/MSRA_10K'),
    'DUT-OMRON':
    _same_folder_part('cascade_psp/DUT-OMRON'),
}

HQSEG_SPLITS: Dict[str, Dict[str, dict]] = dict(
    val=HQSEG_VAL_PARTS, train=HQSEG_TRAIN_PARTS)


@DATASETS.register_module()
class HQSeg44KDataset(InteractiveSegDataset):
    """HQSeg-44K: the validation parts (1537 images: DIS-VD,
    ThinObject5K-TE, COIFT, HRSOD) or the training parts (DIS5K-TR,
    ThinObject5K-TR, FSS-1000, ECSSD, MSRA10K, DUT-OMRON), together or
    apart.

    Masks are 0..255 grey images, values above 127 are the object. Each item
    records its part as ``subset``, so tables report every part and the
    whole.

    Args:
        data_root (str): The folder holding ``DIS5K/``,
            ``thin_object_detection/`` and (for training) ``cascade_psp/``.
        split (str): ``'val'`` for the parts of :data:`HQSEG_VAL_PARTS`,
            ``'train'`` for those of :data:`HQSEG_TRAIN_PARTS`. Defaults to
            ``'val'``.
        parts (str | Sequence[str], optional): Part or parts to read, all
            parts of the split when None.
        part_prefixes (dict, optional): Folders of the parts (``img_path``,
            ``seg_map_path`` and optionally ``img_suffix``,
            ``seg_map_suffix``), when they are not laid out as in the
            split's table.
        **kwargs: See :class:`InteractiveSegDataset`. A part's own
            ``img_suffix`` / ``seg_map_suffix`` win over the dataset's.
    """
    METAINFO = dict(dataset_name='HQSeg-44K')
    LAYOUT = dict(
        data_prefix=dict(img_path='', seg_map_path=''),
        img_suffix=('.jpg', '.png'),
        seg_map_suffix='.png',
        mask_format='grey')

    def __init__(self,
                 data_root: str = '',
                 split: str = 'val',
                 parts: Union[str, Sequence[str], None] = None,
                 part_prefixes: Optional[Dict[str, dict]] = None,
                 **kwargs) -> None:
        if split not in HQSEG_SPLITS:
            raise ValueError(f'split must be one of {sorted(HQSEG_SPLITS)}, '
                             f'got {split!r}')
        self.split = split
        self.part_prefixes = dict(part_prefixes or HQSEG_SPLITS[split])
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
            raise KeyError(f'unknown HQSeg-44K {split} parts '
                           f'{sorted(unknown)}; choose from '
                           f'{sorted(self.part_prefixes)}')
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
                osp.join(self.data_root, prefix['seg_map_path']), part,
                prefix.get('img_suffix'), prefix.get('seg_map_suffix'))
        return items
