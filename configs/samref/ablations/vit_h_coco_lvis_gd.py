# Table 3, row 1: GlobalDiff only.
_base_ = ['../vit_h_coco_lvis.py']
model = dict(use_patch=False, use_selector=False)
