# Copyright (c) samref contributors. All rights reserved.
"""A script's session of the web demo (``demo/app.py``) over Gradio's HTTP
API, with the standard library only.

Gradio documents its HTTP API in "Querying Gradio Apps with Curl": a
``POST`` to ``/gradio_api/call/<api_name>`` with the inputs (``data``) and
a ``session_hash`` queues a call and answers its event id; a ``GET`` of
``/gradio_api/call/<api_name>/<event_id>`` streams the result as
server-sent events, ``complete`` (or ``error``) with the outputs. Files go
up first to ``/gradio_api/upload``. :class:`AppClient` does this over one
kept-alive connection and reads the stream as it comes, so a call returns
as soon as its result is sent (``gradio_client`` reads its stream every
50 ms or so)::

    from samref.apis.app_client import AppClient

    with AppClient('http://127.0.0.1:7860/') as client:
        client.upload('my.jpg')
        record = client.click(320, 240, 1)
        record = client.click(100, 60, 0)
        record['mask']  # COCO RLE of the mask after both clicks
"""
import http.client
import json
import mimetypes
import os.path as osp
import uuid
from typing import Any, List, Optional
from urllib.parse import quote, urlsplit

API_PREFIX = '/gradio_api'


class AppClientError(Exception):
    """The app answered a call with an error; the message is the app's."""


class AppClient:
    """One session of the web demo through Gradio's HTTP API.

    Every call carries the client's ``session_hash``, so the app keeps this
    client's picture and clicks apart from every other client's. One call
    at a time: use one client per thread.

    Args:
        url (str): The app, e.g. ``http://127.0.0.1:7860/``.
        timeout (float): Seconds to wait for the server at each step.
            Defaults to 60.
        session_hash (str, optional): The session; a new random one by
            default.
    """

    def __init__(self,
                 url: str,
                 timeout: float = 60.0,
                 session_hash: Optional[str] = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ValueError(f'not an http(s) URL: {url!r}')
        connection = http.client.HTTPSConnection \
            if parts.scheme == 'https' else http.client.HTTPConnection
        self.connection = connection(
            parts.hostname, parts.port, timeout=timeout)
        self.prefix = parts.path.rstrip('/') + API_PREFIX
        self.session_hash = session_hash or uuid.uuid4().hex

    def __enter__(self) -> 'AppClient':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def _request(self,
                 method: str,
                 path: str,
                 body: Optional[bytes] = None,
                 headers: Optional[dict] = None) -> http.client.HTTPResponse:
        """Send a request on the kept-alive connection; once more on a new
        connection when the server has closed the idle one (it closes a
        connection idle for a few seconds, before reading a request on it).

        Args:
            method (str): ``GET`` or ``POST``.
            path (str): Below ``/gradio_api``.
            body (bytes, optional): The request body.
            headers (dict, optional): Its headers.

        Returns:
            http.client.HTTPResponse: The response, its body unread.
        """
        for attempt in (0, 1):
            try:
                self.connection.request(method, self.prefix + path, body,
                                        headers or {})
                return self.connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                self.connection.close()
                if attempt:
                    raise

    def _read_json(self, response: http.client.HTTPResponse) -> Any:
        """The JSON body of a response; raises on an HTTP error."""
        body = response.read()
        if response.status != 200:
            raise AppClientError(f'HTTP {response.status}: '
                                 f'{body.decode(errors="replace")[:500]}')
        return json.loads(body)

    def call(self, api_name: str, *data: Any) -> List[Any]:
        """Call an endpoint and wait for its result.

        Args:
            api_name (str): The endpoint, e.g. ``'click'`` or ``'/click'``.
            *data: Its inputs, JSON values.

        Returns:
            list: Its outputs (a file as a dict with its ``url``; the
            session state as None).

        Raises:
            AppClientError: The app answered with an error (its message),
                or the stream ended without a result.
        """
        api_name = api_name.lstrip('/')
        body = json.dumps(
            dict(data=list(data), session_hash=self.session_hash)).encode()
        event_id = self._read_json(
            self._request('POST', f'/call/{api_name}', body,
                          {'Content-Type': 'application/json'}))['event_id']
        response = self._request('GET', f'/call/{api_name}/{event_id}')
        if response.status != 200:
            self._read_json(response)  # raises with the server's answer
        event, result = None, None
        # the stream ends after the result (no other call of this session
        # is pending), so it is read to its end: the connection stays usable
        for line in response:
            line = line.decode().rstrip('\r\n')
            if line.startswith('event:'):
                event = line[len('event:'):].strip()
            elif line.startswith('data:') and result is None and \
                    event in ('complete', 'error'):
                result = (event, json.loads(line[len('data:'):]))
        if result is None:
            raise AppClientError(f'/{api_name}: the stream ended without a '
                                 'result')
        event, outputs = result
        if event == 'error':
            message = outputs.get('error') if isinstance(outputs,
                                                         dict) else outputs
            raise AppClientError(f'/{api_name}: {message or outputs}')
        return outputs

    def upload_file(self, path: str) -> dict:
        """Send a file to the app, for an input of a later call.

        Args:
            path (str): The local file.

        Returns:
            dict: Gradio's ``FileData`` of the file on the server.
        """
        name = osp.basename(path)
        boundary = uuid.uuid4().hex
        content_type = mimetypes.guess_type(name)[0] or \
            'application/octet-stream'
        with open(path, 'rb') as f:
            content = f.read()
        body = (f'--{boundary}\r\nContent-Disposition: form-data; '
                f'name="files"; filename="{quote(name)}"\r\n'
                f'Content-Type: {content_type}\r\n\r\n').encode() + \
            content + f'\r\n--{boundary}--\r\n'.encode()
        (server_path, ) = self._read_json(
            self._request(
                'POST', '/upload', body,
                {'Content-Type': f'multipart/form-data; boundary={boundary}'}))
        return dict(
            path=server_path,
            orig_name=name,
            meta={'_type': 'gradio.FileData'})

    def download(self, file_data: dict) -> bytes:
        """Read a file the app returned (e.g. the view of
        ``call('click', x, y, label, True)``).

        Args:
            file_data (dict): Gradio's ``FileData`` of an output, with its
                ``url`` on this app.

        Returns:
            bytes: The file.
        """
        path = urlsplit(file_data['url']).path
        if not path.startswith(self.prefix + '/'):
            raise ValueError(f'{file_data["url"]} is not a file of this app')
        response = self._request('GET', path[len(self.prefix):])
        body = response.read()
        if response.status != 200:
            raise AppClientError(f'HTTP {response.status} for '
                                 f'{file_data["url"]}')
        return body

    def upload(self, path: str) -> str:
        """Upload a picture to click on (``/upload``): it is encoded once.

        Args:
            path (str): The picture.

        Returns:
            str: The status line, e.g. ``**my.jpg** (640 x 480), encoded
            in 95 ms. Click on the object.``
        """
        status = self.call('upload', self.upload_file(path), False)[2]
        if '⚠️' in status:  # the page's way of saying what was wrong
            raise AppClientError(f'/upload: {status}')
        return status

    def click(self, x: float, y: float, label: int) -> dict:
        """Click (``/click``) and get the current object's record, without
        the view (the picture with the mask, which the app then does not
        draw; ``call('click', x, y, label, True)`` returns it too).

        Args:
            x (float): Column in picture pixels.
            y (float): Row in picture pixels.
            label (int): 1 for a positive click, 0 for a negative one.

        Returns:
            dict: The record: ``clicks``, ``mask`` (COCO RLE), ``click_ms``
            (the model's time) and more (``ClickApp.click_record`` of
            ``demo/app.py``).
        """
        return self.call('click', x, y, label, False)[-1]

    def undo(self) -> str:
        """Take the last click back (``/undo``).

        Returns:
            str: The status line.
        """
        return self.call('undo', False)[2]

    def reset(self) -> str:
        """Take all clicks of the current object back (``/reset``).

        Returns:
            str: The status line.
        """
        return self.call('reset', False)[2]

    def next_object(self) -> str:
        """Keep the current mask as a finished object and start another
        (``/next_object``).

        Returns:
            str: The status line.
        """
        return self.call('next_object', False)[2]
