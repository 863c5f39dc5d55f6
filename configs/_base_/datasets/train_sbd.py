# SBD train: img/*.jpg + inst/*.mat, images listed in train.txt.
_base_ = ['./train_pipeline.py']
train_dataloader = dict(
    dataset=dict(
        type='SBDDataset', data_root='data/SBD', ann_file='train.txt'))
