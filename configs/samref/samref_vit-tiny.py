# SAM-REF with SAM's tiny random-weight encoder: for tests and CPU demos
# (the numbers mean nothing).
_base_ = ['../_base_/models/samref_vit-b.py', '../_base_/default_runtime.py']
model = dict(image_encoder=dict(arch='tiny'))
