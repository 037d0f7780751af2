"""Telling a closed IMAP connection from a quiet one, on plain and TLS sockets alike."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.mailbox.imap import _peer_closed


@pytest.fixture
def plain_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    client.settimeout(30)  # as IMAPClient leaves it: the peek must still not wait
    yield server, client
    server.close()
    client.close()


def test_a_quiet_connection_is_open_and_answers_at_once(
    plain_pair: tuple[socket.socket, socket.socket],
) -> None:
    _, client = plain_pair
    started = time.monotonic()
    assert not _peer_closed(client)
    assert time.monotonic() - started < 5  # not the socket's 30 s timeout
    assert client.gettimeout() == 30


def test_unread_data_is_left_where_it_is(plain_pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = plain_pair
    server.sendall(b"* 3 EXISTS\r\n")
    time.sleep(0.05)
    assert not _peer_closed(client)
    assert client.recv(100) == b"* 3 EXISTS\r\n"


def test_a_closed_connection_is_closed(plain_pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = plain_pair
    server.close()
    assert _peer_closed(client)


@pytest.fixture
def tls_pair(tmp_path: Path) -> Iterator[tuple[socket.socket, ssl.SSLSocket]]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []

    def accept() -> None:
        conn, _ = listener.accept()
        accepted.append(server_context.wrap_socket(conn, server_side=True))

    thread = threading.Thread(target=accept)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert))
    raw = socket.create_connection(listener.getsockname(), timeout=30)
    client = client_context.wrap_socket(raw, server_hostname="localhost")
    thread.join(10)
    yield accepted[0], client
    client.close()
    accepted[0].close()
    listener.close()


def test_tls_open_then_closed(tls_pair: tuple[socket.socket, ssl.SSLSocket]) -> None:
    server, client = tls_pair
    assert not _peer_closed(client)
    server.sendall(b"* OK still here\r\n")
    time.sleep(0.05)
    assert not _peer_closed(client)
    assert client.recv(100) == b"* OK still here\r\n"
    server.close()
    time.sleep(0.05)
    assert _peer_closed(client)
