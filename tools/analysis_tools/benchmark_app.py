# Copyright (c) samref contributors. All rights reserved.
"""Round trips of the web demo's clicks, for one user and several at once.

Starts ``demo/app.py`` in a subprocess on a free port of 127.0.0.1 (random
weights of the config unless a checkpoint is given; the same weights are
loaded here to check the masks) and clicks through its endpoints as a
script does: first one user, then ``--users`` users at once, each in its
own thread with its own client (its own session), its own generated
picture (``/upload``) and its own click positions (``/click``). The client
is :class:`~samref.apis.app_client.AppClient` (Gradio's HTTP API, the
record of each click without the view) or, with ``--client gradio_client``,
``gradio_client``; ``--view`` asks for the view too and downloads it. It
reports the median and 95th percentile of the round trips, the model's time
per click (``click_ms`` of the endpoint: the interaction and the mask at the
picture's size), their ratios, and whether every user's clicks and masks
are its own: the same as this process computes with an
:class:`~samref.apis.InteractiveSession` for that user's clicks alone.
``--phases`` runs the app with Gradio's profiling (``GRADIO_PROFILING=1``)
and splits the server's part of a click into its queue wait, the callback
and Gradio's postprocessing (writing the view's JPEG among it)::

    python tools/analysis_tools/benchmark_app.py \\
        configs/demo/samref_tiny_256_stage2.py --clicks 40 --users 4

Needs the optional requirements (``pip install -r
requirements/optional.txt``).
"""
import argparse
import json
import os
import os.path as osp
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

import mmcv
import numpy as np
import torch
from pycocotools import mask as mask_utils
from terminaltables import AsciiTable

from samref.apis import InteractivePredictor, init_model
from samref.apis.app_client import AppClient
from samref.datasets.synthetic import draw_sample
from samref.utils import free_port

DEFAULT_CONFIG = 'configs/demo/samref_tiny_256_stage2.py'
APP = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'demo', 'app.py')
START_TIMEOUT = 180  # seconds for the app to listen
CLIENTS = ('http', 'gradio_client')
# Gradio's profiling phases of a call (GRADIO_PROFILING=1), in ms
PHASES = ('queue_wait', 'fn_call', 'postprocess', 'total')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='round trips of the web demo\'s clicks')
    parser.add_argument(
        'config', nargs='?', default=DEFAULT_CONFIG, help='model config')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='weights (default: random weights, which time the same)')
    parser.add_argument(
        '--clicks', type=int, default=40, help='timed clicks per user')
    parser.add_argument(
        '--clicks-per-object',
        type=int,
        default=5,
        help='clicks on an object before its masks are checked and the '
        'user starts over')
    parser.add_argument(
        '--users', type=int, default=4, help='users clicking at once')
    parser.add_argument(
        '--concurrency',
        type=int,
        help='the app\'s --concurrency (default: its own default)')
    parser.add_argument(
        '--think',
        type=float,
        default=0.0,
        help='seconds each user waits between a result and its next click '
        '(default 0: back to back)')
    parser.add_argument(
        '--client',
        choices=CLIENTS,
        default='http',
        help='http: Gradio\'s HTTP API (samref.apis.app_client.AppClient, '
        'default); gradio_client: Gradio\'s Python client')
    parser.add_argument(
        '--view',
        action='store_true',
        help='ask for the view (the picture with the mask and clicks) with '
        'every click and download it, as the page does; by default only '
        'the click\'s record')
    parser.add_argument(
        '--phases',
        action='store_true',
        help='run the app with Gradio\'s profiling and report the server\'s '
        'phases of a click')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=(480, 640),
        metavar=('H', 'W'),
        help='size of the generated picture')
    args = parser.parse_args(argv)
    for name in ('clicks', 'clicks_per_object', 'users'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.think < 0:
        parser.error('--think must not be negative')
    return args


def start_app(config: str,
              checkpoint: str,
              concurrency: Optional[int],
              log_path: str,
              profile: bool = False) -> Tuple[subprocess.Popen, str]:
    """Start the web demo and wait until it listens.

    Args:
        config (str): Model config.
        checkpoint (str): Weights.
        concurrency (int, optional): The app's ``--concurrency``.
        log_path (str): Where its output goes.
        profile (bool): Run it with Gradio's profiling
            (``GRADIO_PROFILING=1``). Defaults to False.

    Returns:
        tuple: The process and the app's URL.

    Raises:
        SystemExit: The app exits or does not listen within
            :data:`START_TIMEOUT` seconds (with the end of its log).
    """
    port = free_port()
    command = [sys.executable, APP, config, checkpoint, '--port', str(port)]
    if concurrency is not None:
        command += ['--concurrency', str(concurrency)]
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED='False',
        NO_PROXY='127.0.0.1',
        GRADIO_PROFILING='1' if profile else '')
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            with open(log_path) as log:
                raise SystemExit('the app exited:\n' + log.read()[-2000:])
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return process, f'http://127.0.0.1:{port}/'
        except OSError:
            if time.monotonic() > deadline:
                process.terminate()
                raise SystemExit(
                    f'the app did not listen within {START_TIMEOUT} s')
            time.sleep(0.5)


def user_clicks(user: int, count: int, height: int,
                width: int) -> List[Tuple[float, float, int]]:
    """A user's own click positions: ``(x, y, label)``, the first click of
    every object positive.

    Args:
        user (int): The user's number, which seeds its positions.
        count (int): How many clicks.
        height (int): Picture height.
        width (int): Picture width.

    Returns:
        list[tuple[float, float, int]]: The clicks.
    """
    rng = np.random.default_rng(1000 + user)
    return [(float(rng.integers(0, width)), float(rng.integers(0, height)),
             int(rng.random() < 0.7)) for _ in range(count)]


class User:
    """One user of the app: its own client, session, picture and clicks.

    Args:
        url (str): The app.
        picture (str): The picture it uploads (PNG).
        clicks (list[tuple[float, float, int]]): Its clicks.
        clicks_per_object (int): Clicks before it starts over.
        think (float): Seconds between a result and the next click.
        client (str): ``'http'`` (:class:`AppClient`) or
            ``'gradio_client'``. Defaults to ``'http'``.
        view (bool): Ask for the view with every click and download it.
            Defaults to False.
    """

    def __init__(self,
                 url: str,
                 picture: str,
                 clicks: List[Tuple[float, float, int]],
                 clicks_per_object: int,
                 think: float,
                 client: str = 'http',
                 view: bool = False) -> None:
        if client == 'http':
            self.client = AppClient(url)
            self.client.upload(picture)
        else:
            from gradio_client import Client, handle_file
            self.client = Client(url, verbose=False)
            self.client.predict(handle_file(picture), api_name='/upload')
        self.picture = picture
        self.clicks = clicks
        self.clicks_per_object = clicks_per_object
        self.think = think
        self.view = view
        self.round_trips: List[float] = []
        self.model_times: List[float] = []
        self.objects: List[dict] = []  # the last record of every object

    def call(self, api_name: str, *data) -> None:
        """Call an endpoint of the page's buttons (no view asked for).

        Args:
            api_name (str): E.g. ``'reset'``.
            *data: Its inputs.
        """
        if isinstance(self.client, AppClient):
            self.client.call(api_name, *data)
        else:
            self.client.predict(*data, api_name=f'/{api_name}')

    def click(self, x: float, y: float, label: int) -> dict:
        """One click as a script makes it, the view downloaded when asked
        for (``gradio_client`` downloads every file it is sent).

        Args:
            x (float): Column in picture pixels.
            y (float): Row in picture pixels.
            label (int): 1 positive, 0 negative.

        Returns:
            dict: The click's record.
        """
        if not isinstance(self.client, AppClient):
            return self.client.predict(
                x, y, label, self.view, api_name='/click')[-1]
        if not self.view:
            return self.client.click(x, y, label)
        outputs = self.client.call('click', x, y, label, True)
        self.client.download(outputs[1])
        return outputs[-1]

    def time_no_op(self, count: int) -> List[float]:
        """Round trips of an endpoint that computes nothing: ``/export``
        before any click. What the client and Gradio's queue take of every
        round trip.

        Args:
            count (int): How many calls.

        Returns:
            list[float]: Seconds of each.
        """
        round_trips = []
        for _ in range(count):
            begin = time.perf_counter()
            self.call('export')
            round_trips.append(time.perf_counter() - begin)
        return round_trips

    def run(self, start: Optional[threading.Barrier] = None) -> None:
        """Click all its clicks, timing each round trip.

        Args:
            start (threading.Barrier, optional): Waited for before the
                first click, so that users start together.
        """
        if start is not None:
            start.wait()
        record = None
        for index, (x, y, label) in enumerate(self.clicks):
            first = index % self.clicks_per_object == 0
            if first and record is not None:
                self.objects.append(record)
                self.call('reset', False)
            begin = time.perf_counter()
            record = self.click(x, y, 1 if first else label)
            self.round_trips.append(time.perf_counter() - begin)
            self.model_times.append(record['click_ms'] / 1e3)
            if self.think:
                time.sleep(self.think)
        self.objects.append(record)


def check_sessions(users: List[User], model) -> int:
    """Recompute every object of every user alone and compare.

    Args:
        users (list[User]): Users after :meth:`User.run`.
        model: The app's model, loaded here with the same weights.

    Returns:
        int: Objects whose clicks or mask differ from their own.
    """
    predictor = InteractivePredictor(model)
    mismatches = 0
    for user in users:
        predictor.set_image(
            mmcv.imread(user.picture, channel_order='rgb'),
            channel_order='rgb')
        for index, record in enumerate(user.objects):
            start = index * user.clicks_per_object
            own = user.clicks[start:start + user.clicks_per_object]
            own = [(x, y, 1 if i == 0 else label)
                   for i, (x, y, label) in enumerate(own)]
            session = predictor.new_session()
            for x, y, label in own:
                session.add_click(x, y, bool(label))
            rle = dict(
                record['mask'], counts=record['mask']['counts'].encode())
            same = [list(c) for c in own] == record['clicks'] and \
                np.array_equal(mask_utils.decode(rle), session.mask)
            mismatches += not same
    return mismatches


def cpu_model() -> str:
    """The CPU's model name (Linux), or the platform's processor."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or 'unknown CPU'


def server_phases(url: str) -> Optional[Dict[str, List[float]]]:
    """The server's phases of the ``/click`` calls since the last look,
    from Gradio's profiling, which is then cleared.

    Args:
        url (str): The app, started with ``profile=True``.

    Returns:
        dict, optional: Milliseconds of each call for every phase of
        :data:`PHASES`; None when the app's Gradio has no profiling.
    """
    api = url + 'gradio_api/profiling/'
    try:
        with urllib.request.urlopen(api + 'traces') as response:
            traces = json.load(response)
        urllib.request.urlopen(
            urllib.request.Request(api + 'clear', method='POST')).close()
    except urllib.error.HTTPError:  # a Gradio without profiling
        return None
    clicks = [trace for trace in traces if trace['fn_name'] == 'click']
    return {
        phase: [trace[f'{phase}_ms'] for trace in clicks]
        for phase in PHASES
    }


def phase_cells(phases: Optional[Dict[str, List[float]]]) -> List[str]:
    """The table's cells of the server's phases (``-`` without them).

    Args:
        phases (dict, optional): See :func:`server_phases`.

    Returns:
        list[str]: Queue wait median / p95, callback median,
        postprocess median and the server's whole part (queue wait and
        the call), in ms.
    """
    if phases is None:
        return ['-'] * 4
    wait = phases['queue_wait']
    server = np.add(wait, phases['total'])
    return [
        f'{statistics.median(wait):.0f} / {np.percentile(wait, 95):.0f}',
        f'{statistics.median(phases["fn_call"]):.0f}',
        f'{statistics.median(phases["postprocess"]):.0f}',
        f'{statistics.median(server):.0f}'
    ]


def click_as_users(
        args: argparse.Namespace, url: str, folder: str
) -> Tuple[List[float], User, List[User], List[Optional[dict]]]:
    """Click as one user, then as ``args.users`` users at once.

    Args:
        args (argparse.Namespace): The benchmark's arguments.
        url (str): The app.
        folder (str): Where the users' pictures go.

    Returns:
        tuple: The round trips of an endpoint that computes nothing, the
        single user, the users who clicked at once and the server's
        phases of both (see :func:`server_phases`; None without
        ``--phases``).
    """
    height, width = args.size

    def user(number: int, clicks: int, clicks_per_object: int,
             think: float) -> User:
        picture = osp.join(folder, f'picture_{number}.png')
        mmcv.imwrite(
            draw_sample((height, width), np.random.default_rng(number))[0],
            picture)
        return User(url, picture, user_clicks(number, clicks, height, width),
                    clicks_per_object, think, args.client, args.view)

    def phases() -> Optional[dict]:
        return server_phases(url) if args.phases else None

    warmup = user(99, 3, 3, 0.0)
    no_op = warmup.time_no_op(20)
    warmup.run()
    phases()
    single = user(0, args.clicks, args.clicks_per_object, args.think)
    single.run()
    single_phases = phases()
    many = [
        user(number, args.clicks, args.clicks_per_object, args.think)
        for number in range(1, args.users + 1)
    ]
    start = threading.Barrier(len(many))
    threads = [
        threading.Thread(target=user.run, args=(start, )) for user in many
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return no_op, single, many, [single_phases, phases()]


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark and print its table.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        dict: ``rows`` (the table), ``ratio_single`` (one user's median
        round trip over the median model time), ``ratio_users`` (the
        users' p95 over one user's p95), ``no_op`` (the median round trip
        of an endpoint that computes nothing), ``mismatches`` and
        ``load`` (the 1-minute load average before and after).
    """
    args = parse_args(argv)
    height, width = args.size
    load_before = os.getloadavg()[0]
    torch.manual_seed(0)
    model = init_model(args.config, args.checkpoint)
    with tempfile.TemporaryDirectory(prefix='samref_benchmark_app_') as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:  # the app loads the same random weights
            checkpoint = osp.join(tmp, 'random_weights.pth')
            torch.save(model.state_dict(), checkpoint)
        process, url = start_app(args.config, checkpoint, args.concurrency,
                                 osp.join(tmp, 'app.log'), args.phases)
        try:
            no_op, single, many, phases = click_as_users(args, url, tmp)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        load_after = os.getloadavg()[0]
        # the app's threads per click: the same rounding, the same masks
        cores = len(os.sched_getaffinity(0))
        torch.set_num_threads(max(1, cores // (args.concurrency or cores)))
        mismatches = check_sessions([single] + many, model)
    objects = sum(len(user.objects) for user in [single] + many)

    rows = [[
        'users', 'clicks', 'round trip median (ms)', 'round trip p95 (ms)',
        'model median (ms)', 'round trip / model'
    ]]
    if args.phases:
        rows[0] += [
            'server: queue wait median / p95 (ms)', 'callback median (ms)',
            'postprocess median (ms)', 'server median (ms)'
        ]
    summary = {}
    groups = [('1', [single], phases[0]), (str(args.users), many, phases[1])]
    for name, users, server in groups:
        trips = [t for user in users for t in user.round_trips]
        models = [t for user in users for t in user.model_times]
        summary[name] = (statistics.median(trips),
                         float(np.percentile(trips,
                                             95)), statistics.median(models))
        trip, p95, model_time = summary[name]
        rows.append([
            name,
            len(trips), f'{trip * 1e3:.0f}', f'{p95 * 1e3:.0f}',
            f'{model_time * 1e3:.0f}', f'{trip / model_time:.2f}'
        ])
        if args.phases:
            rows[-1] += phase_cells(server)
    ratio_single = summary['1'][0] / summary['1'][2]
    ratio_users = summary[str(args.users)][1] / summary['1'][1]
    print(f'web demo round trips: {args.config}, {height} x {width} '
          f'pictures, client {args.client}, '
          f'{"view and record" if args.view else "record only"}, think '
          f'time {args.think:g} s, app concurrency '
          f'{args.concurrency or "default"}; {cpu_model()}, '
          f'{len(os.sched_getaffinity(0))} cores, load average '
          f'{load_before:.2f} before, {load_after:.2f} after')
    print(AsciiTable(rows).table)
    print(f'one user: round trip / model time (medians) {ratio_single:.2f} '
          '(target <= 2)')
    print(f'{args.users} users: p95 / one user\'s p95 {ratio_users:.2f} '
          '(target <= 2)')
    print('an endpoint that computes nothing (/export before a click): '
          f'median {statistics.median(no_op) * 1e3:.0f} ms')
    print(f'sessions isolated: {objects - mismatches} of {objects} objects '
          'have their own clicks and masks')
    return dict(
        rows=rows,
        ratio_single=ratio_single,
        ratio_users=ratio_users,
        no_op=statistics.median(no_op),
        mismatches=mismatches,
        load=(load_before, load_after))


if __name__ == '__main__':
    main()
