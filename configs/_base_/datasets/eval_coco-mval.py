# COCO-MVal: img/*.jpg + gt/*.png (0/255), 800 objects.
_base_ = ['./interactive_eval.py']
data_root = 'data/COCO_MVal'
test_dataloader = dict(
    dataset=dict(type='COCOMValDataset', data_root=data_root))
