# Table 4: 3 ResBasicBlock(s) in GlobalDiff's detail extractor (the default).
_base_ = ['../vit_h_coco_lvis.py']
model = dict(global_refiner=dict(num_blocks=3))
