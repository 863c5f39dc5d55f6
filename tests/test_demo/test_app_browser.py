# Copyright (c) samref contributors. All rights reserved.
"""The web demo in a real browser: headless Chromium through Selenium.

Runs where Chromium, its driver and the selenium package are installed
(``make test-browser`` installs them); skipped with the reason otherwise.
Screenshots go to ``$SAMREF_SCREENSHOT_DIR`` (default: pytest's tmp_path).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mmcv
import numpy as np
import pytest

from testing_utils import CONFIG_DIR, REPO_ROOT

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason='no Chromium (apt-get install chromium chromium-driver)'),
    pytest.mark.skipif(
        CHROMEDRIVER is None,
        reason='no chromedriver (apt-get install chromium-driver)'),
]
webdriver = pytest.importorskip(
    'selenium.webdriver',
    reason='selenium missing: pip install -r requirements/optional.txt')
pytest.importorskip(
    'gradio',
    reason='gradio missing: pip install -r requirements/optional.txt')
from selenium.webdriver.common.action_chains import ActionChains  # noqa
from selenium.webdriver.common.by import By  # noqa
from selenium.webdriver.common.keys import Keys  # noqa
from selenium.webdriver.support.ui import WebDriverWait  # noqa

TIMEOUT = 120  # seconds for the app to start, and for any one step


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The app on SAM-REF with random weights, on 127.0.0.1."""
    port = free_port()
    log = open(tmp_path / 'app.log', 'w')
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED='False',
        OMP_NUM_THREADS='1',
        NO_PROXY='127.0.0.1')
    process = subprocess.Popen([
        sys.executable,
        str(REPO_ROOT / 'demo' / 'app.py'),
        str(CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2.py'), '--port',
        str(port), '--demo-work-dir',
        str(tmp_path / 'no_demo')
    ],
                               cwd=str(tmp_path),
                               stdout=log,
                               stderr=subprocess.STDOUT,
                               env=env)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail('the app exited: ' +
                            (tmp_path / 'app.log').read_text()[-2000:])
            try:
                socket.create_connection(('127.0.0.1', port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f'the app did not listen within {TIMEOUT} s')
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-quic', '--no-first-run',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage', '--window-size=1400,1500',
                 f'--user-data-dir={tmp_path / "profile"}'):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options,
        service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what):
    return WebDriverWait(driver, TIMEOUT, 0.2).until(
        lambda d: condition(d), message=f'waiting for {what}')


def text_of(driver, elem_id):
    return driver.find_element(By.ID, elem_id).text


def stage_panel_shown(driver):
    # Gradio leaves hidden components out of the page.
    return any(e.is_displayed()
               for e in driver.find_elements(By.CSS_SELECTOR, '#stages img'))


def view_image(driver):
    return driver.find_element(By.CSS_SELECTOR, '#view img')


def test_upload_click_and_see_the_stages(server, browser, tmp_path):
    shots = Path(os.environ.get('SAMREF_SCREENSHOT_DIR', tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    # A picture with one object on a plain background.
    picture = np.full((300, 400, 3), (200, 170, 120), np.uint8)
    picture[90:210, 120:300] = (40, 60, 200)
    path = tmp_path / 'object.png'
    mmcv.imwrite(picture, str(path))
    browser.get(server)
    wait_for(browser, lambda d: 'RANDOM WEIGHTS' in text_of(d, 'banner'),
             'the banner')
    upload = browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]')
    # A file that is not an image gets a message, not a trace.
    notes = tmp_path / 'notes.txt'
    notes.write_text('hello')
    upload.send_keys(str(notes))
    wait_for(browser, lambda d: 'no readable PNG' in text_of(d, 'status'),
             'the not-an-image message')
    assert 'Traceback' not in browser.page_source
    browser.save_screenshot(str(shots / '0_not_an_image.png'))
    browser.find_element(By.CSS_SELECTOR,
                         '#upload button[aria-label="Clear"]').click()

    upload = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#upload input[type=file]'),
        'the cleared upload')[0]
    upload.send_keys(str(path))
    wait_for(
        browser,
        lambda d: 'object.png (400 x 300), encoded' in text_of(d, 'status'),
        'the encoded picture')
    image = view_image(browser)
    before = image.get_attribute('src')
    browser.save_screenshot(str(shots / '1_uploaded.png'))
    assert not stage_panel_shown(browser)

    # Click on the object: (210, 150) of the picture.
    width = image.size['width']
    scale = width / 400

    def click_at(x, y, button='left', shift=False):
        """Click at (x, y) of the picture."""
        chain = ActionChains(browser)
        if shift:
            chain.key_down(Keys.SHIFT)
        chain.move_to_element_with_offset(
            view_image(browser), (x - 200) * scale, (y - 150) * scale)
        chain.context_click() if button == 'right' else chain.click()
        if shift:
            chain.key_up(Keys.SHIFT)
        chain.perform()

    def press(*keys):
        ActionChains(browser).send_keys(*keys).perform()

    def status_shows(text, what):
        wait_for(browser, lambda d: text in text_of(d, 'status'), what)

    click_at(210, 150)
    status_shows('Click 1 (+) at', 'the first click')
    after = view_image(browser).get_attribute('src')
    assert after != before  # the mask and the click are drawn
    status = text_of(browser, 'status')
    x, y = status.split('Click 1 (+) at (')[1].split(')')[0].split(', ')
    assert abs(float(x) - 210) <= 3 and abs(float(y) - 150) <= 3
    times = text_of(browser, 'stage-times')
    assert 'global_diff' in times and 'whole click' in times
    assert not stage_panel_shown(browser)  # drawn only when asked for
    browser.find_element(By.CSS_SELECTOR, '#show-stages input').click()
    wait_for(browser, stage_panel_shown, 'the stage panel')
    browser.save_screenshot(str(shots / '2_clicked_with_stages.png'))

    # Negative clicks: a right click, a Shift+click, the toggle; undo with
    # z, Ctrl+Z and the button.
    click_at(20, 20, button='right')
    status_shows('Click 2 (-) at (20, 20)', 'the right click')
    browser.save_screenshot(str(shots / '3_negative_click.png'))
    press('z')
    status_shows('Click 1 (+) at', 'the undo with z')
    click_at(380, 280, shift=True)
    status_shows('Click 2 (-) at (380, 280)', 'the Shift+click')
    click_at(250, 180)
    status_shows('Click 3 (+) at (250, 180)', 'a left click again positive')
    press(Keys.CONTROL, 'z')
    status_shows('Click 2 (-) at', 'the undo with Ctrl+Z')
    browser.find_element(
        By.XPATH, '//*[@id="mode"]//label[contains(., "negative")]').click()
    click_at(20, 280)
    status_shows('Click 3 (-) at (20, 280)', 'the negative left click')
    for left, what in (('Click 2 (-) at', 'the undo button'),
                       ('Click 1 (+) at', 'the undo button again')):
        browser.find_element(By.ID, 'undo').click()
        status_shows(left, what)

    browser.find_element(By.ID, 'export').click()
    status_shows('Exported 1 mask', 'the export')
    links = wait_for(
        browser, lambda d: {
            a.get_attribute('download'): a.get_attribute('href')
            for a in d.find_elements(By.CSS_SELECTOR, '#exported a')
        }, 'the exported files')
    assert set(links) == {'object_mask.png', 'object_masks_coco.json'}
    with urllib.request.urlopen(links['object_masks_coco.json'], timeout=30) \
            as response:
        coco = json.load(response)
    (annotation, ) = coco['annotations']
    assert annotation['segmentation']['size'] == [300, 400]
    exported = browser.find_element(By.ID, 'exported')
    browser.execute_script('arguments[0].scrollIntoView({block: "center"})',
                           exported)
    assert 'object_masks_coco' in exported.text  # the file list shows
    browser.save_screenshot(str(shots / '4_exported.png'))

    # n keeps the object and starts the next one.
    press('n')
    status_shows('1 object(s) done', 'the next object')
    assert 'Click 1' not in text_of(browser, 'status')

    # A bundled example replaces the picture and its clicks.
    browser.find_element(By.XPATH,
                         '//button[contains(., "shapes_0.png")]').click()
    wait_for(
        browser,
        lambda d: 'shapes_0.png (480 x 360), encoded' in text_of(d, 'status'),
        'the example')
    assert 'Click 1' not in text_of(browser, 'status')
    wait_for(browser,
             lambda d: not d.find_elements(By.CSS_SELECTOR, '#exported a'),
             'the exported files to go')
    browser.save_screenshot(str(shots / '5_example.png'))
