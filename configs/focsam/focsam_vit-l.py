_base_ = ['../_base_/models/focsam_vit-l.py', '../_base_/default_runtime.py']
