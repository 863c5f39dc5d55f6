# Stage 1 of SAM-REF (FocSAM's scheme): SAM's image and prompt encoders
# frozen, the mask decoder fine-tuned with the normalized focal loss on
# COCO + LVIS with simulated clicks; 4 GPUs x batch 4, 320k iterations.
#   bash tools/dist_train.sh configs/sam/sam_vit-h_4xb4-320k_coco-lvis.py 4
_base_ = [
    '../_base_/models/sam_vit-h.py', '../_base_/datasets/train_coco-lvis.py',
    '../_base_/datasets/eval_davis.py', '../_base_/schedules/schedule_320k.py',
    '../_base_/default_runtime.py'
]
load_from = 'checkpoints/sam_vit_h_4b8939.pth'
model = dict(
    frozen_modules=('image_encoder', 'prompt_encoder'),
    losses=dict(
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl')))
