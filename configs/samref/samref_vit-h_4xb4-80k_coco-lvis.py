# Stage 2 of SAM-REF: everything of SAM frozen (the stage-1 decoder loaded),
# GlobalDiff + PatchDiff trained with equation (3) on COCO + LVIS; 4 GPUs x
# batch 4, 80k iterations.
#   bash tools/dist_train.sh \
#       configs/samref/samref_vit-h_4xb4-80k_coco-lvis.py 4
_base_ = [
    '../_base_/models/samref_vit-h.py',
    '../_base_/datasets/train_coco-lvis.py',
    '../_base_/datasets/eval_davis.py', '../_base_/schedules/schedule_80k.py',
    '../_base_/default_runtime.py'
]
load_from = 'work_dirs/sam_vit-h_4xb4-320k_coco-lvis/iter_320000.pth'
