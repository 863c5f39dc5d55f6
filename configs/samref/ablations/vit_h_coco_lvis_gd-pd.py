# Table 3, row 2: GlobalDiff + PatchDiff after every click (no selector).
_base_ = ['../vit_h_coco_lvis.py']
model = dict(use_selector=False)
