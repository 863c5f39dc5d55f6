# The short name of samref_vit-b_4xb4-80k_coco-lvis.py (the same config):
#   bash tools/dist_train.sh configs/samref/vit_b_coco_lvis.py 4
_base_ = ['./samref_vit-b_4xb4-80k_coco-lvis.py']
