# DAVIS (345 frames): img/*.jpg + gt/*.png.
_base_ = ['./interactive_eval.py']
data_root = 'data/DAVIS'
test_dataloader = dict(dataset=dict(type='DAVISDataset', data_root=data_root))
