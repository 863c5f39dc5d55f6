# Stage 2 on COCO + LVIS + HQSeg-44K train, evaluated on HQSeg-44K val.
_base_ = [
    '../_base_/models/samref_vit-b.py',
    '../_base_/datasets/train_coco-lvis-hqseg.py',
    '../_base_/datasets/eval_hqseg44k.py',
    '../_base_/schedules/schedule_80k.py', '../_base_/default_runtime.py'
]
load_from = 'work_dirs/sam_vit-b_4xb4-320k_coco-lvis-hqseg/iter_320000.pth'
