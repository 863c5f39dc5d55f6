# Table 3, row 2: GlobalDiff + PatchDiff after every click (no selector).
_base_ = ['../samref_vit-h_4xb4-80k_coco-lvis.py']
model = dict(use_selector=False)
