_base_ = [
    '../_base_/models/sam_vit-b.py', '../_base_/datasets/eval_coco-mval.py',
    '../_base_/default_runtime.py'
]
