# Table 3, row 3: GlobalDiff + PatchDiff + Dynamic Patch Selector (the full
# model, as configs/samref/vit_h_coco_lvis.py).
_base_ = ['../vit_h_coco_lvis.py']
model = dict(use_global=True, use_patch=True, use_selector=True)
