_base_ = ['../_base_/models/focsam_vit-h.py', '../_base_/default_runtime.py']
