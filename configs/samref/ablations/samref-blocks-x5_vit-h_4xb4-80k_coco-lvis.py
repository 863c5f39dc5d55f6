# Table 4: 5 ResBasicBlock(s) in GlobalDiff's detail extractor.
_base_ = ['../samref_vit-h_4xb4-80k_coco-lvis.py']
model = dict(global_refiner=dict(num_blocks=5))
