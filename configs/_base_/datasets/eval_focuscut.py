# Any benchmark in the FocusCut layout: <DS>/img, <DS>/gt/<stem>#001.png (1 =
# object, 255 = ignore), <DS>/list/val.txt.
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(
        type='FocusCutDataset',
        data_root='data/FocusCut/DAVIS',
        ann_file='list/val.txt'))
