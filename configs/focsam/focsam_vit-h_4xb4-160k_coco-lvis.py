# Stage 2 of FocSAM: everything of SAM frozen (the stage-1 decoder loaded),
# the focus refiner trained with the normalized focal loss and the click
# loss on COCO + LVIS; 4 GPUs x batch 4, 160k iterations, with the recipe
# of FocSAM's code (the model config and the schedule say where it is
# matched). Stage 1 is SAM's config, shared with SAM-REF: unlike FocSAM's
# stage 1 it ignores the ground-truth padding, uses NFL eps 1e-12 and draws
# the clicks per sample rather than per dataset of a batch:
#   bash tools/dist_train.sh configs/sam/sam_vit-h_4xb4-320k_coco-lvis.py 4
#   bash tools/dist_train.sh \
#       configs/focsam/focsam_vit-h_4xb4-160k_coco-lvis.py 4
_base_ = [
    '../_base_/models/focsam_vit-h.py',
    '../_base_/datasets/train_coco-lvis.py',
    '../_base_/datasets/eval_davis.py', '../_base_/schedules/schedule_160k.py',
    '../_base_/default_runtime.py'
]
load_from = 'work_dirs/sam_vit-h_4xb4-320k_coco-lvis/iter_320000.pth'
