"""The webhook client against a receiver that answers exactly the bytes each test scripts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from prefsvc.webhooks import posting

BODY = b'{"type":"contact.unsubscribed"}'
HEADERS = {"webhook-id": "msg_1", "webhook-timestamp": "1", "content-type": "application/json"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Scripted:
    """Accepts connections; to each request read, sends what ``answer(n)`` returns.

    ``answer`` gets the request's number (0 first) and returns the bytes to send, or None to
    close the connection without answering. ``close_after`` closes a connection once it has
    answered that request number. Requests are recorded with the connection they came on.
    """

    answer: Callable[[int], bytes | None]
    close_after: set[int] = field(default_factory=set)
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn, self.connections), daemon=True).start()

    def _talk(self, conn: socket.socket, number: int) -> None:
        try:
            self._requests(conn, number)
        except ConnectionError:
            pass  # the client dropped the connection: it may (a long answer, a timeout)

    def _requests(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                request = head + reader.read(length)
                index = len(self.requests)
                self.requests.append((number, request))
                reply = self.answer(index)
                if reply is None:
                    return
                if reply == b"hang":
                    self.release.wait(10)
                    return
                conn.sendall(reply)
                if index in self.close_after:
                    return


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[Scripted, str]]]:
    listeners = []
    servers = []

    def start(answer, close_after=()):
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        server = Scripted(answer, set(close_after))
        servers.append(server)
        threading.Thread(target=server.serve, args=(listener,), daemon=True).start()
        return server, f"http://127.0.0.1:{listener.getsockname()[1]}/hook?k=1"

    yield start
    posting.close()
    for server in servers:
        server.release.set()
    for listener in listeners:
        listener.close()


def test_posts_go_over_one_kept_alive_connection_with_head_and_body(scripted):
    server, url = scripted(lambda n: OK)
    answers = [posting.post(url, BODY, HEADERS) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert answers[0].excerpt == "ok"
    assert server.connections == 1
    number, request = server.requests[0]
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?k=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{url.split(':')[2].split('/')[0]}".encode() in lines
    assert b"webhook-id: msg_1" in lines
    assert f"Content-Length: {len(BODY)}".encode() in lines
    assert body == BODY


def test_a_chunked_answer_is_read_through_and_the_connection_kept(scripted):
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6;x=1\r\nstored\r\n6\r\n as 42\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server, url = scripted(lambda n: chunked if n == 0 else OK)
    first = posting.post(url, BODY, HEADERS)
    second = posting.post(url, BODY, HEADERS)
    assert (first.status, first.excerpt) == (202, "stored as 42")
    assert second.status == 200
    assert server.connections == 1


def test_an_answer_too_long_to_read_through_closes_the_connection(scripted):
    size = posting.MAX_KEPT_BODY + 1
    long = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    server, url = scripted(lambda n: long if n == 0 else OK)
    first = posting.post(url, BODY, HEADERS)
    assert first.status == 500
    assert first.excerpt == "x" * 200  # the delivery log keeps 200 characters
    assert posting.post(url, BODY, HEADERS).status == 200
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\n\r\nok",  # the body ends with the connection
    ],
)
def test_an_answer_that_ends_the_connection_is_not_reused(scripted, answer):
    server, url = scripted(lambda n: answer if n == 0 else OK, close_after={0})
    assert posting.post(url, BODY, HEADERS) == posting.Answer(200, "ok")
    assert posting.post(url, BODY, HEADERS).status == 200
    assert server.connections == 2


def test_a_kept_alive_connection_the_receiver_closed_is_reopened_once(scripted):
    server, url = scripted(lambda n: OK, close_after={0})  # closes without saying so
    assert posting.post(url, BODY, HEADERS).status == 200
    assert posting.post(url, BODY, HEADERS).status == 200
    assert server.connections == 2
    assert [number for number, _ in server.requests] == [1, 2]  # posted once each


def test_a_new_connection_closed_without_an_answer_is_not_retried(scripted):
    server, url = scripted(lambda n: None)
    assert posting.post(url, BODY, HEADERS) == posting.Answer(None, "RemoteDisconnected")
    assert len(server.requests) == 1


def test_an_interim_answer_is_followed_by_the_real_one(scripted):
    server, url = scripted(lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert posting.post(url, BODY, HEADERS) == posting.Answer(200, "ok")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SMTP ready\r\n\r\n", "ProtocolError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "ProtocolError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "IncompleteRead"),
    ],
)
def test_an_answer_that_is_not_http_is_an_error_by_name(scripted, answer, error):
    _server, url = scripted(lambda n: answer, close_after={0})
    assert posting.post(url, BODY, HEADERS) == posting.Answer(None, error)


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(scripted):
    _server, url = scripted(lambda n: b"hang")
    assert posting.post(url, BODY, HEADERS, timeout=0.2) == posting.Answer(None, "TimeoutError")


def test_nothing_listening_is_a_refused_connection():
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    answer = posting.post(f"http://127.0.0.1:{port}/hook", BODY, HEADERS)
    assert answer == posting.Answer(None, "ConnectionRefusedError")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/a b", "http://127.0.0.1:9/a\r\nX-Injected: 1", "http://h:x/"]
)
def test_a_url_that_could_not_be_a_request_line_is_refused_before_connecting(url):
    assert posting.post(url, BODY, HEADERS) == posting.Answer(None, "InvalidURL")
