# COCO-MVal: img/*.jpg + gt/*.png (0/255), 800 objects.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='COCOMValDataset', data_root='data/COCO_MVal'))
