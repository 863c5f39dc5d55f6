# Table 3, row 1: GlobalDiff only.
_base_ = ['../samref_vit-h_4xb4-80k_coco-lvis.py']
model = dict(use_patch=False, use_selector=False)
