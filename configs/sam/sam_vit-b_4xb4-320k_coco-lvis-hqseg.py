# Stage 1 on COCO + LVIS + HQSeg-44K train (Table 2's last rows).
_base_ = [
    '../_base_/models/sam_vit-b.py',
    '../_base_/datasets/train_coco-lvis-hqseg.py',
    '../_base_/datasets/eval_hqseg44k.py',
    '../_base_/schedules/schedule_320k.py', '../_base_/default_runtime.py'
]
load_from = 'checkpoints/sam_vit_b_01ec64.pth'
model = dict(
    frozen_modules=('image_encoder', 'prompt_encoder'),
    losses=dict(
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl')))
