_base_ = [
    '../_base_/models/sam_vit-b.py', '../_base_/datasets/eval_pascal-voc.py',
    '../_base_/default_runtime.py'
]
