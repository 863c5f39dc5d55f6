# COCO 2017 + LVIS v1 + HQSeg-44K train (DIS5K-TR, ThinObject5K-TR,
# FSS-1000, ECSSD, MSRA10K, DUT-OMRON, laid out as HQ-SAM distributes them).
_base_ = ['./train_pipeline.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        # The parts differ only in their names.
        ignore_keys=['dataset_name'],
        datasets=[
            dict(
                type='COCOLVISDataset',
                data_root='data/coco',
                coco_ann_file='annotations/instances_train2017.json',
                lvis_ann_file='../lvis/lvis_v1_train.json',
                pipeline={{_base_.train_pipeline}}),
            dict(
                type='HQSeg44KDataset',
                data_root='data/sam-hq',
                split='train',
                pipeline={{_base_.train_pipeline}}),
        ]))
