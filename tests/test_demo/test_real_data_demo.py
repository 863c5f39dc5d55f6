# Copyright (c) samref contributors. All rights reserved.

import cv2
import pytest
import torch

from samref.datasets import make_shapes_dataset
from testing_utils import REPO_ROOT, build_from_config, load_script


@pytest.fixture
def real_data_demo(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    return load_script('demo/real_data_demo.py')


def grabcut_layout(root, pictures):
    """Pictures of the generated layout rewritten as GrabCut's
    ``data_GT/*.jpg`` + ``boundary_GT/*.bmp``."""
    (root / 'data_GT').mkdir(parents=True)
    (root / 'boundary_GT').mkdir()
    for image in sorted((pictures / 'img').iterdir()):
        cv2.imwrite(str(root / 'data_GT' / image.name), cv2.imread(str(image)))
        mask = cv2.imread(str(pictures / 'gt' / f'{image.stem}.png'), 0)
        cv2.imwrite(str(root / 'boundary_GT' / f'{image.stem}.bmp'), mask)
    return root


def test_missing_data_names_the_setting_and_folder(real_data_demo, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        real_data_demo.main(['--coco-mval', str(tmp_path / 'absent')])
    assert 'train_dataloader.dataset.data_root' in str(error.value)
    assert str(tmp_path / 'absent') in str(error.value)


def test_trains_both_stages_on_coco_mval_and_evaluates_on_grabcut(
        real_data_demo, tmp_path, capsys):
    coco_mval = make_shapes_dataset(str(tmp_path / 'coco_mval'), 3, seed=0)
    make_shapes_dataset(str(tmp_path / 'pictures'), 1, seed=1)
    grabcut = grabcut_layout(tmp_path / 'grabcut', tmp_path / 'pictures')
    num_objects = len(list((tmp_path / 'pictures' / 'gt').iterdir()))
    shapes_sam = tmp_path / 'shapes_sam.pth'
    model = build_from_config('demo/sam_tiny_256_stage1.py')
    torch.save({'state_dict': model.state_dict()}, shapes_sam)
    shapes_samref = tmp_path / 'shapes_samref.pth'
    torch.manual_seed(3)
    refiners = build_from_config('demo/samref_tiny_256_stage2.py').state_dict()
    torch.save({'state_dict': refiners}, shapes_samref)
    work_dir = tmp_path / 'work'
    summaries = real_data_demo.main([
        '--work-dir',
        str(work_dir), '--shapes-checkpoint',
        str(shapes_sam), '--shapes-refiners',
        str(shapes_samref), '--coco-mval', coco_mval, '--grabcut',
        str(grabcut), '--stage1-iters', '2', '--stage2-iters', '2'
    ])
    assert list(summaries) == ['SAM (shapes only)', 'SAM', 'SAM-REF']
    assert all(s['num_objects'] == num_objects for s in summaries.values())
    assert (work_dir / 'sam' / 'iter_2.pth').is_file()
    # Stage 2 starts from the given refiners: two small steps away.
    trained = torch.load(
        work_dir / 'samref' / 'iter_2.pth', weights_only=True)['state_dict']
    for key in ('global_refiner.error_detail.weight',
                'patch_refiner.image_fusion.weight'):
        assert (trained[key] - refiners[key]).abs().max() < 1e-2
    assert (work_dir / 'miou_grabcut.png').stat().st_size > 0
    assert (work_dir / 'loss_curves.png').stat().st_size > 0
    printed = capsys.readouterr().out
    assert '[5/5]' in printed and '| SAM (shapes only) |' in printed
