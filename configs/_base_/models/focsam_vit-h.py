# FocSAM on SAM ViT-H, the released model's size.
_base_ = ['./focsam_vit-b.py']
model = dict(image_encoder=dict(arch='huge'))
