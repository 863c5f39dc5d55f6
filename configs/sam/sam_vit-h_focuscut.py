_base_ = [
    '../_base_/models/sam_vit-h.py', '../_base_/datasets/eval_focuscut.py',
    '../_base_/default_runtime.py'
]
