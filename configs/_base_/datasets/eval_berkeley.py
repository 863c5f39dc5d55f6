# Berkeley: images/*.jpg + masks/*.png (128 = ignore), 100 objects.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='BerkeleyDataset', data_root='data/Berkeley'))
