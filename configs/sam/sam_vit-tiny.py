# A two-block, 64-channel image encoder with SAM's prompt encoder and mask
# decoder: random weights only, for tests and CPU demos.
_base_ = ['../_base_/models/sam_vit-b.py', '../_base_/default_runtime.py']
model = dict(image_encoder=dict(arch='tiny'))
