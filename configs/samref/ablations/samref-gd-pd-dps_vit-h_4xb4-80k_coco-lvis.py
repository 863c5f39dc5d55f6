# Table 3, row 3: GlobalDiff + PatchDiff + Dynamic Patch Selector (the full
# model, as configs/samref/samref_vit-h_4xb4-80k_coco-lvis.py).
_base_ = ['../samref_vit-h_4xb4-80k_coco-lvis.py']
model = dict(use_global=True, use_patch=True, use_selector=True)
