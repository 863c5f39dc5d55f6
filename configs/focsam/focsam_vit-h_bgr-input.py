# FocSAM ViT-H with the input colour order of FocSAM's own code: its mmseg
# data preprocessor does not set bgr_to_rgb and mmcv loads images as BGR, so
# the released model apparently saw BGR pixels normalised with SAM's RGB
# mean/std. Use this config with the converted release
# (tools/model_converters/focsam2samref.py) to reproduce its numbers; the
# default configs feed RGB, as SAM was trained.
_base_ = ['./focsam_vit-h.py']
model = dict(data_preprocessor=dict(bgr_to_rgb=False))
