_base_ = [
    '../_base_/models/sam_vit-b.py', '../_base_/datasets/eval_hqseg44k.py',
    '../_base_/default_runtime.py'
]
