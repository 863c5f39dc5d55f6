# Copyright (c) samref contributors. All rights reserved.
"""Images read within a pixel limit checked from the header."""
import cv2
import mmcv
import numpy as np
import pytest
from PIL import Image

from malicious_files import png_pixel_bomb, png_text_bomb
from samref.datasets import LoadImageWithPixelLimit, SkipBadSample
from samref.datasets.mask_formats import MaskFileError, read_mask_file
from samref.utils import (MAX_IMAGE_PIXELS, ImageFileError, read_image,
                          read_image_size)


def test_pixel_bomb_is_live_for_plain_decoding(tmp_path):
    """A 9000 x 9000 PNG of a few hundred KB decodes to 81 MB (grey)."""
    path = png_pixel_bomb(tmp_path / 'bomb.png', 9000, 9000)
    assert path.stat().st_size < 2**19
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (9000, 9000) and decoded.nbytes > 80e6


def test_pixel_bomb_is_refused_before_decoding(tmp_path):
    path = png_pixel_bomb(tmp_path / 'bomb.png', 9000, 9000)
    with pytest.raises(
            ImageFileError,
            match=f'{path} is 9000 x 9000 pixels, more than the '
            f'limit of {MAX_IMAGE_PIXELS} pixels'):
        read_image(str(path))
    # The limit is a setting.
    assert read_image(
        str(path), max_pixels=9000 * 9000,
        flag='unchanged').shape == (9000, 9000)
    assert read_image_size(str(path), max_pixels=9000 * 9000) == (9000, 9000)


def test_header_bomb_beyond_pil_limit_is_named(tmp_path):
    """PIL refuses its own decompression bombs (2x its limit) on opening;
    the error still names the file, the size and our limit."""
    path = png_pixel_bomb(tmp_path / 'huge.png', 40000, 40000, False)
    with pytest.raises(
            ImageFileError,
            match='huge.png declares 1600000000 pixels, more '
            'than the limit'):
        read_image(str(path))


@pytest.mark.parametrize('kind', [b'zTXt', b'iCCP'])
def test_text_chunk_bomb_is_named(tmp_path, kind):
    path = png_text_bomb(tmp_path / 'text.png', kind)
    assert path.stat().st_size < 2**18
    with pytest.raises(
            ImageFileError, match='text.png: no readable PNG, JPEG'):
        read_image(str(path))


def test_empty_and_foreign_files_are_named(tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ImageFileError, match='empty.jpg is an empty file'):
        read_image(str(empty))
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    with pytest.raises(
            ImageFileError, match='notes.png: no readable PNG, JPEG'):
        read_image(str(text))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        read_image(str(tmp_path / 'missing.png'))


def test_formats_restrict_the_readers(tmp_path):
    """Only formats whose signature PIL and OpenCV both know are decoded,
    so the size checked is the size decoded."""
    path = tmp_path / 'a.gif'
    Image.new('RGB', (4, 3)).save(path)
    assert read_image_size(str(path)) == (4, 3)
    with pytest.raises(ImageFileError, match='no readable PNG, JPEG image'):
        read_image_size(str(path), formats=('PNG', 'JPEG'))
    with pytest.raises(
            ImageFileError, match='a.gif: no readable PNG, JPEG, BMP, TIFF'):
        read_image(str(path))
    for suffix in ('png', 'jpg', 'bmp', 'tif', 'webp', 'ppm'):
        path = str(tmp_path / f'a.{suffix}')
        Image.new('RGB', (4, 3), (9, 9, 9)).save(path)
        assert read_image(path).shape == (3, 4, 3)


def test_images_read_as_mmcv_reads_them(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (5, 7, 3), np.uint8)
    path = str(tmp_path / 'a.png')
    mmcv.imwrite(image, path)
    np.testing.assert_array_equal(read_image(path), mmcv.imread(path))
    np.testing.assert_array_equal(
        read_image(path, channel_order='rgb'),
        mmcv.imread(path, channel_order='rgb'))


def test_loading_transform_refuses_bombs_naming_the_file(tmp_path):
    good = str(tmp_path / 'good.png')
    mmcv.imwrite(np.zeros((6, 8, 3), np.uint8), good)
    bomb = str(png_pixel_bomb(tmp_path / 'bomb.png', 300, 300))
    load = LoadImageWithPixelLimit(max_pixels=200 * 200)
    results = load(dict(img_path=good))
    assert results['img'].shape == (6, 8, 3)
    assert results['ori_shape'] == (6, 8)
    with pytest.raises(ImageFileError, match='bomb.png is 300 x 300'):
        load(dict(img_path=bomb))
    assert LoadImageWithPixelLimit(
        max_pixels=200 * 200, ignore_empty=True)(dict(img_path=bomb)) is None
    # Training skips it as bad data.
    assert SkipBadSample([load])(dict(img_path=bomb)) is None
    assert 'max_pixels=40000' in repr(load)


def test_mask_bomb_is_a_mask_file_error(tmp_path):
    path = png_pixel_bomb(tmp_path / 'gt.png', 9000, 9000)
    with pytest.raises(MaskFileError, match='gt.png.*9000 x 9000'):
        read_mask_file(str(path))
