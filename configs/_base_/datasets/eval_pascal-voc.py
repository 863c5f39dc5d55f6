# PASCAL VOC 2012 val: JPEGImages + SegmentationObject (255 = ignore); one
# object per instance.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(
        type='PascalVOCInstanceDataset',
        data_root='data/VOCdevkit/VOC2012',
        ann_file='ImageSets/Segmentation/val.txt'))
