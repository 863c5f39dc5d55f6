# GrabCut: data_GT/*.jpg|bmp + boundary_GT/*.bmp (128 = ignore), 50 objects.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='GrabCutDataset', data_root='data/GrabCut'))
