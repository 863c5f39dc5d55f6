# Table 4: 8 ResBasicBlock(s) in GlobalDiff's detail extractor.
_base_ = ['../vit_h_coco_lvis.py']
model = dict(global_refiner=dict(num_blocks=8))
