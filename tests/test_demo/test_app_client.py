# Copyright (c) samref contributors. All rights reserved.
"""The web demo's HTTP client against a stand-in for Gradio's HTTP API (no
Gradio needed); test_app.py drives the real app with it."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from samref.apis.app_client import AppClient, AppClientError


class FakeGradio(BaseHTTPRequestHandler):
    """Gradio's HTTP API as documented: ``POST /gradio_api/call/<api>``
    answers an event id, ``GET /gradio_api/call/<api>/<id>`` streams the
    result as server-sent events (chunked), ``POST /gradio_api/upload``
    stores a file. The ``echo`` endpoint answers ``[None, data,
    session_hash]`` after a heartbeat and an intermediate result; ``fail``
    answers an error. A connection idle for :attr:`timeout` seconds is
    closed, as uvicorn closes an idle kept-alive one."""
    protocol_version = 'HTTP/1.1'
    timeout = 0.3

    def log_message(self, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers['Content-Length']))
        if self.path == '/gradio_api/upload':
            self.server.uploads.append((self.headers['Content-Type'], body))
            self.reply(json.dumps(['/tmp/gradio/abc/upload.png']).encode())
            return
        api = self.path[len('/gradio_api/call/'):]
        if api not in ('echo', 'fail'):
            self.reply(b'{"detail": "Not Found"}', 404)
            return
        event_id = f'event{len(self.server.calls)}'
        self.server.calls[event_id] = json.loads(body)
        self.reply(json.dumps(dict(event_id=event_id)).encode())

    def do_GET(self) -> None:
        api, event_id = self.path[len('/gradio_api/call/'):].split('/')
        call = self.server.calls[event_id]
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        if api == 'echo':
            events = [('heartbeat', None), ('generating', ['partial']),
                      ('complete', [None, call['data'], call['session_hash']])]
        else:
            events = [('error', dict(error='x = 900 is outside'))]
        for event, data in events:
            chunk = f'event: {event}\ndata: {json.dumps(data)}\n\n'.encode()
            self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b'0\r\n\r\n')


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), FakeGradio)
    httpd.calls, httpd.uploads, httpd.connections = {}, [], 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url_of(server) -> str:
    return f'http://127.0.0.1:{server.server_address[1]}/'


def test_calls_carry_the_session_and_return_the_result(server):
    with AppClient(url_of(server)) as first, \
            AppClient(url_of(server)) as second:
        outputs = first.call('/echo', 240.0, 180, 1, False)
        # the intermediate result is passed over for the final one
        assert outputs == [None, [240.0, 180, 1, False], first.session_hash]
        assert first.call('echo')[2] == first.session_hash
        assert second.call('echo')[2] == second.session_hash
        assert first.session_hash != second.session_hash
        # one kept-alive connection per client
        assert server.connections == 2


def test_the_apps_error_is_raised_with_its_message(server):
    with AppClient(url_of(server)) as client:
        with pytest.raises(AppClientError, match='/fail: x = 900 is outside'):
            client.call('fail', 900, 10, 1)
        with pytest.raises(AppClientError, match='HTTP 404'):
            client.call('nothing')
        assert client.call('echo', 1)[1] == [1]  # the connection still works


def test_a_connection_closed_while_idle_is_opened_again(server):
    with AppClient(url_of(server)) as client:
        client.call('echo', 1)
        time.sleep(3 * FakeGradio.timeout)  # the server closes it
        assert client.call('echo', 2)[1] == [2]
        assert server.connections == 2


def test_upload_sends_the_file_as_multipart(server, tmp_path):
    picture = tmp_path / 'my picture.png'
    picture.write_bytes(b'\x89PNG not really')
    with AppClient(url_of(server)) as client:
        data = client.upload_file(str(picture))
    assert data == dict(
        path='/tmp/gradio/abc/upload.png',
        orig_name='my picture.png',
        meta={'_type': 'gradio.FileData'})
    (content_type, body), = server.uploads
    boundary = content_type.split('boundary=')[1]
    assert content_type.startswith('multipart/form-data')
    assert body.startswith(f'--{boundary}\r\n'.encode())
    assert body.endswith(f'\r\n--{boundary}--\r\n'.encode())
    assert b'name="files"; filename="my%20picture.png"' in body
    assert b'Content-Type: image/png\r\n\r\n\x89PNG not really\r\n' in body


def test_only_http_urls():
    with pytest.raises(ValueError, match='not an http'):
        AppClient('127.0.0.1:7860')
