"""How much of a request body the API accepts, and how (issue 13): a declared Content-Length over an
endpoint's limit is answered 413 before any of the body is sent; a chunked body is refused as soon as
it passes the limit and the rest is never read; what is accepted is received into a spooled temporary
file, and a refused body leaves no version and no open temporary file behind. Raw sockets, because
a client library would send the whole body before reading the answer."""
from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labkit_api.bodies import IN_MEMORY_BYTES, MAX_CHECK_BYTES, MAX_JSON_BYTES, MAX_UPLOAD_BYTES

from labkit.dashboards.serve import ApiServer
from labkit.protocols.check import MAX_NOTEBOOK_BYTES
from labkit.store.repos import MAX_FILE_BYTES

from .client import Api

BOUNDARY = "labkit-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
PIECE = 1024 * 1024  # what the client sends at a time


def mib(n: int) -> str:
    return f"{n // 2**20} MiB"


class Raw:
    """One HTTP/1.1 request written by hand on a socket to the API server, and its answer."""

    def __init__(self, server: ApiServer) -> None:
        url = urlsplit(server.url)
        self.prefix, self.server = url.path, server
        # the timeout only keeps a server that waits for a body never sent from hanging the test run
        self.sock = socket.create_connection((url.hostname, url.port), timeout=60)

    def send_head(self, method: str, path: str, headers: dict[str, str], *, token: bool = True) -> None:
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {urlsplit(self.server.url).netloc}",
                 *([f"Authorization: token {self.server.token}"] if token else []),
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send_chunk(self, data: bytes) -> None:
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of the answer."""
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        return response.status, json.loads(response.read())

    def closed_by_server(self) -> bool:
        """After an answer: whether the server closed the connection (rather than wait for more)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def part_head(name: str, file_name: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def multipart(files: dict[str, bytes]) -> bytes:
    return b"".join(part_head("file", n) + data + b"\r\n" for n, data in files.items()) + f"--{BOUNDARY}--\r\n".encode()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def deleted_files_open(pid: int) -> set[str]:
    """The server's open descriptors on files already unlinked: where an unnamed temporary file shows."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.endswith("(deleted)"):
            found.add(f"{fd.name} -> {target}")
    return found


def test_an_over_limit_content_length_is_refused_before_the_body_is_sent(api_server: ApiServer, api: Api) -> None:
    for declared in (MAX_UPLOAD_BYTES + 1, 10 * 2**30):  # just over; and over Jupyter's own 512 MiB
        raw = Raw(api_server)
        try:
            raw.send_head("POST", "/models/too-big/versions", {"Content-Type": MULTIPART,
                                                                "Content-Length": str(declared)})
            status, body = raw.answer()  # not one byte of the body was sent
            closed = raw.closed_by_server()
        finally:
            raw.close()
        assert status == 413, body
        assert f"over the limit of {mib(MAX_UPLOAD_BYTES)}" in body["error"] and "smaller files" in body["error"], body
        assert body["limit_bytes"] == MAX_UPLOAD_BYTES
        assert closed, "the server must close the connection rather than wait for the body"
    api.error("GET", "/models/too-big", 404)


def test_curl_style_expect_100_continue_gets_the_413_instead_of_continue(api_server: ApiServer) -> None:
    raw = Raw(api_server)
    try:
        raw.send_head("POST", "/protocol-check", {"Content-Type": MULTIPART, "Expect": "100-continue",
                                                  "Content-Length": str(MAX_CHECK_BYTES + 1)})
        status, body = raw.answer()
    finally:
        raw.close()
    assert status == 413 and body["limit_bytes"] == MAX_CHECK_BYTES, body
    assert f"limit of {mib(MAX_CHECK_BYTES)}" in body["error"], body
    assert f"notebook may be at most {mib(MAX_NOTEBOOK_BYTES)}" in body["error"], body


def test_a_json_body_has_a_smaller_limit(api_server: ApiServer) -> None:
    raw = Raw(api_server)
    try:
        raw.send_head("POST", "/models/hh/versions/1/tags", {"Content-Type": "application/json",
                                                             "Content-Length": str(MAX_JSON_BYTES + 1)})
        status, body = raw.answer()
    finally:
        raw.close()
    assert status == 413 and body["limit_bytes"] == MAX_JSON_BYTES, body
    assert f"limit of {mib(MAX_JSON_BYTES)}" in body["error"] and "small object" in body["error"], body


def test_who_is_asking_comes_before_the_size(api_server: ApiServer) -> None:
    raw = Raw(api_server)
    try:
        raw.send_head("POST", "/models/anon/versions", {"Content-Type": MULTIPART,
                                                        "Content-Length": str(10 * MAX_UPLOAD_BYTES)}, token=False)
        status, body = raw.answer()
        closed = raw.closed_by_server()
    finally:
        raw.close()
    assert status == 401 and closed, body


def test_a_bad_content_length_is_a_clear_400(api_server: ApiServer) -> None:
    raw = Raw(api_server)
    try:
        raw.send_head("POST", "/models/x/versions", {"Content-Type": MULTIPART, "Content-Length": "lots"})
        status, body = raw.answer()
    finally:
        raw.close()
    assert status == 400 and "Content-Length header must be a number of bytes" in body["error"], body


def test_a_chunked_body_past_the_limit_is_refused_and_nothing_is_saved(api_server: ApiServer, api: Api,
                                                                       model_file: Path) -> None:
    pid = api_server.process.pid
    temporary_before = deleted_files_open(pid)
    rss_before = rss_kib(pid)
    raw = Raw(api_server)
    sent, refused_while_sending = 0, False
    try:
        raw.send_head("POST", "/models/chunked-big/versions", {"Content-Type": MULTIPART,
                                                                "Transfer-Encoding": "chunked"})
        start = part_head("file", model_file.name) + model_file.read_bytes() + b"\r\n" + part_head("file", "big.bin")
        raw.send_chunk(start)
        sent = len(start)
        filler = b"x" * PIECE
        try:
            while sent < 2 * MAX_UPLOAD_BYTES:  # then end the body: a server that took it all answers 201/400
                raw.send_chunk(filler)
                sent += PIECE
            raw.send_chunk(f"\r\n--{BOUNDARY}--\r\n".encode())
            raw.sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            refused_while_sending = True  # the server closed the connection: expected
        status, body = raw.answer()
        closed = raw.closed_by_server()
    finally:
        raw.close()
    rss_after = rss_kib(pid)
    print(f"\nchunked upload refused after the client sent {sent / 2**20:.0f} MiB (limit "
          f"{MAX_UPLOAD_BYTES / 2**20:.0f} MiB); server RSS {rss_before / 1024:.0f} MiB before, "
          f"{rss_after / 1024:.0f} MiB after")
    assert status == 413, body
    assert f"grew past the limit of {mib(MAX_UPLOAD_BYTES)}" in body["error"], body
    assert body["limit_bytes"] == MAX_UPLOAD_BYTES
    assert closed and refused_while_sending and sent < 2 * MAX_UPLOAD_BYTES, "the rest of the body must not be read"
    api.error("GET", "/models/chunked-big", 404)  # no entity, no version
    assert deleted_files_open(pid) <= temporary_before, "the refused body's temporary file is still open"


def test_an_upload_larger_than_the_in_memory_part_is_stored_whole(api: Api, api_server: ApiServer,
                                                                  model_file: Path) -> None:
    extra = bytes(range(256)) * (3 * IN_MEMORY_BYTES // 256 + 7)  # received partly on disk
    pid = api_server.process.pid
    temporary_before = deleted_files_open(pid)
    saved = api.ok("POST", "/models/hh-big-extra/versions", 201, data={"message": "with data"},
                   files=[("file", (model_file.name, model_file.read_bytes())), ("file", ("extra.bin", extra))])
    assert saved["version"]["number"] == 1 and saved["version"]["message"] == "with data"
    assert saved["version"]["main_file"] == model_file.name
    assert api.get("/models/hh-big-extra/versions/1/files/extra.bin").content == extra
    assert api.get(f"/models/hh-big-extra/versions/1/files/{model_file.name}").content == model_file.read_bytes()
    assert deleted_files_open(pid) <= temporary_before


def test_a_chunked_upload_within_the_limit_is_accepted(api_server: ApiServer, api: Api, model_file: Path) -> None:
    body = multipart({model_file.name: model_file.read_bytes()})
    raw = Raw(api_server)
    try:
        raw.send_head("POST", "/models/hh-chunked/versions", {"Content-Type": MULTIPART,
                                                              "Transfer-Encoding": "chunked"})
        for at in range(0, len(body), 4096):
            raw.send_chunk(body[at:at + 4096])
        raw.sock.sendall(b"0\r\n\r\n")
        status, answer = raw.answer()
    finally:
        raw.close()
    assert status == 201 and answer["version"]["main_file"] == model_file.name, answer
    assert api.get(f"/models/hh-chunked/versions/1/files/{model_file.name}").content == model_file.read_bytes()


def test_a_malformed_multipart_body_is_a_clear_400_and_saves_nothing(api: Api, model_file: Path) -> None:
    unfinished = multipart({model_file.name: model_file.read_bytes()}).removesuffix(f"--{BOUNDARY}--\r\n".encode())
    message = api.error("POST", "/models/hh-unfinished/versions", 400, data=unfinished,
                        headers={"Content-Type": MULTIPART})
    assert "multipart/form-data body could not be read" in message and "final boundary" in message
    api.error("GET", "/models/hh-unfinished", 404)


def test_json_and_notebook_bodies_still_work(api: Api, model_file: Path) -> None:
    api.ok("POST", "/models/hh-tagged/versions", 201, files={"file": (model_file.name, model_file.read_bytes())})
    tagged = api.ok("POST", "/models/hh-tagged/versions/1/tags", 201, json={"tag": "bodies-test"})
    assert tagged["tags"] == ["bodies-test"]
    assert "send a JSON object" in api.error("POST", "/models/hh-tagged/versions/1/tags", 400)
    checked = api.ok("POST", "/protocol-check", files={"file": ("draft.ipynb", b"{not a notebook")})
    assert checked["valid"] is False and checked["problems"]


def test_a_file_over_the_librarys_limit_within_the_request_limit_gets_the_librarys_400(api: Api,
                                                                                       model_file: Path) -> None:
    assert MAX_FILE_BYTES + 2**20 < MAX_UPLOAD_BYTES  # else this case cannot happen
    message = api.error("POST", "/models/hh-huge-file/versions", 400,
                        files=[("file", (model_file.name, model_file.read_bytes())),
                               ("file", ("huge.bin", b"z" * (MAX_FILE_BYTES + 1)))])
    assert f"huge.bin is larger than {mib(MAX_FILE_BYTES)}" in message
    api.error("GET", "/models/hh-huge-file", 404)


JSON_ENDPOINTS = [("POST", "/runs"), ("POST", "/matrix"), ("POST", "/models/hh/versions/1/tags"),
                  ("PUT", "/models/hh/versions/1/visibility"), ("POST", "/models/hh/collaborators"),
                  ("PUT", "/users/too-big"), ("POST", "/users/too-big/tokens")]
NO_BODY_ENDPOINTS = [("GET", "/me"), ("GET", "/models"), ("POST", "/runs/some-run/cancel"),
                     ("DELETE", "/users/too-big/tokens/laptop"), ("GET", "/runs/some-run/prediction"),
                     ("GET", "/openapi.json"), ("POST", "/no/such/endpoint")]


def refused_before_sending(server: ApiServer, method: str, path: str,
                           declared: int) -> tuple[int, dict[str, Any], bool]:
    """Declare a body of ``declared`` bytes, send none of it: (status, answer, connection closed)."""
    raw = Raw(server)
    try:
        raw.send_head(method, path, {"Content-Type": "application/json", "Content-Length": str(declared)})
        status, body = raw.answer()
        return status, body, raw.closed_by_server()
    finally:
        raw.close()


def test_every_json_endpoint_refuses_an_over_limit_body_before_it_is_sent(api_server: ApiServer,
                                                                          api: Api) -> None:
    for method, path in JSON_ENDPOINTS:
        status, body, closed = refused_before_sending(api_server, method, path, MAX_JSON_BYTES + 1)
        assert status == 413 and body["limit_bytes"] == MAX_JSON_BYTES, (method, path, body)
        assert f"limit of {mib(MAX_JSON_BYTES)}" in body["error"] and f"for {method} " in body["error"], body
        assert closed, (method, path)
    assert "too-big" not in [u["name"] for u in api.ok("GET", "/users?limit=500")["items"]]


def test_an_endpoint_that_reads_no_body_bounds_one_sent_anyway(api_server: ApiServer, api: Api) -> None:
    for method, path in NO_BODY_ENDPOINTS:  # over Jupyter's own 512 MiB, which it would have held whole
        status, body, closed = refused_before_sending(api_server, method, path, 10 * 2**30)
        assert status == 413 and body["limit_bytes"] == MAX_JSON_BYTES, (method, path, body)
        assert "reads no request body" in body["error"] and closed, (method, path, body)
    assert api.ok("GET", "/me", data=b"{}")["authenticated_by"] == "jupyter"  # a small one is tolerated


def test_a_chunked_json_body_past_the_limit_is_refused_and_nothing_is_made(api_server: ApiServer, api: Api) -> None:
    raw = Raw(api_server)
    sent, refused_while_sending = 0, False
    try:
        raw.send_head("PUT", "/users/chunked-user", {"Content-Type": "application/json",
                                                    "Transfer-Encoding": "chunked"})
        raw.send_chunk(b'{"roles": ["moderator"], "padding": "')
        try:
            while sent < 64 * MAX_JSON_BYTES:  # far more than a socket's buffers hold
                raw.send_chunk(b"x" * PIECE)
                sent += PIECE
            raw.send_chunk(b'"}')
            raw.sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            refused_while_sending = True
        status, body = raw.answer()
        closed = raw.closed_by_server()
    finally:
        raw.close()
    assert status == 413 and f"grew past the limit of {mib(MAX_JSON_BYTES)}" in body["error"], body
    assert closed and refused_while_sending and sent < 64 * MAX_JSON_BYTES, "the rest of the body must not be read"
    assert "chunked-user" not in [u["name"] for u in api.ok("GET", "/users?limit=500")["items"]]


def test_a_request_refused_before_its_small_body_is_answered_once_the_body_is_in(api_server: ApiServer) -> None:
    """Without credentials: a clean 401 on a connection that stays open, rather than a reset (the
    server closing with the body unread), for every JSON endpoint and one that reads no body."""
    body = b'{"model": "hh", "protocol": "test"}'
    raw = Raw(api_server)
    try:
        for method, path in [*JSON_ENDPOINTS, ("POST", "/runs/some-run/cancel"), ("POST", "/no/such/endpoint")]:
            raw.send_head(method, path, {"Content-Type": "application/json", "Content-Length": str(len(body))},
                          token=False)
            raw.sock.sendall(body)
            status, answer = raw.answer()  # the next request goes on the same connection
            assert status == 401 and "Authorization: token" in answer["error"], (method, path, answer)
        raw.send_head("GET", "/me?colour=red", {"Content-Type": "application/json",
                                                "Content-Length": str(len(body))})
        raw.sock.sendall(body)
        status, answer = raw.answer()
        assert status == 400 and "unknown query parameters ['colour']" in answer["error"], answer
    finally:
        raw.close()


def test_a_request_without_a_body_refused_in_prepare_keeps_the_connection(api_server: ApiServer) -> None:
    raw = Raw(api_server)
    try:
        for _ in range(3):  # each answer on the same connection: the server did not close it
            raw.send_head("GET", "/models", {}, token=False)
            status, answer = raw.answer()
            assert status == 401 and "Authorization: token" in answer["error"], answer
        raw.send_head("GET", "/me", {})
        assert raw.answer()[0] == 200
    finally:
        raw.close()
