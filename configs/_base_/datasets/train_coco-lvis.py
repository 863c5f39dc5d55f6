# COCO 2017 + LVIS v1 (train), as FocSAM and InterFormer use them: COCO
# instances and LVIS polygons (LVIS objects overlapping a taken object by
# more than half are dropped), clicks drawn with gamma 0.6 (COCO) and 0.9
# (LVIS). LVIS v1 images are COCO 2017 train and val images.
_base_ = ['./train_pipeline.py']
train_dataloader = dict(
    dataset=dict(
        type='COCOLVISDataset',
        data_root='data/coco',
        coco_ann_file='annotations/instances_train2017.json',
        lvis_ann_file='../lvis/lvis_v1_train.json'))
