# DAVIS (345 frames): img/*.jpg + gt/*.png.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='DAVISDataset', data_root='data/DAVIS'))
