_base_ = [
    '../_base_/models/sam_vit-l.py', '../_base_/datasets/eval_sbd.py',
    '../_base_/default_runtime.py'
]
