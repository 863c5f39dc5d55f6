# Berkeley: images/*.jpg + masks/*.png (128 = ignore), 100 objects.
_base_ = ['./interactive_eval.py']
data_root = 'data/Berkeley'
test_dataloader = dict(
    dataset=dict(type='BerkeleyDataset', data_root=data_root))
