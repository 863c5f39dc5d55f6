# FocSAM on SAM ViT-L.
_base_ = ['./focsam_vit-b.py']
model = dict(image_encoder=dict(arch='large'))
