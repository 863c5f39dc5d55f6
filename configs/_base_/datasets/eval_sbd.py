# SBD: img/*.jpg + inst/*.mat, images listed in val.txt; one object per
# instance.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='SBDDataset', data_root='data/SBD', ann_file='val.txt'))
