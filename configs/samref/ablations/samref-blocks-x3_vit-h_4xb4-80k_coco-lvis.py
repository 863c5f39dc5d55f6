# Table 4: 3 ResBasicBlock(s) in GlobalDiff's detail extractor (the paper's
# choice; the configs take 2).
_base_ = ['../samref_vit-h_4xb4-80k_coco-lvis.py']
model = dict(global_refiner=dict(num_blocks=3))
