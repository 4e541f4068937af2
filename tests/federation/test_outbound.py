"""How the broker's outbound client reacts to what the network does, against real servers on
loopback: every failure to get an answer is one OutboundError naming it, answers are bounded,
and the environment's proxy is used as httpx used it."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.http import TLS
from vssid_broker.federation.outbound import AnswerTooLarge, OutboundClient, OutboundError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A server on a free loopback port; yields the port."""
    listening = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield listening.sockets[0].getsockname()[1]
    finally:
        listening.close()


def answering(body: bytes, seen: list[bytes] | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
        await writer.drain()
        writer.close()

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)
    writer.close()


def outbound(timeout: float = 5.0) -> OutboundClient:
    return OutboundClient(timeout_seconds=timeout, ssl_context=TLS)


async def test_an_answer_is_read_whole() -> None:
    async with server(answering(b'{"access_token": "x"}')) as port:
        client = outbound()
        answer = await client.request("GET", f"http://127.0.0.1:{port}/t", headers={})
        await client.aclose()
    assert (answer.status_code, answer.json()) == (200, {"access_token": "x"})


async def test_a_refused_connection_is_an_outbound_error() -> None:
    async with server(silent) as port:
        pass  # closed again: nothing listens there now
    with pytest.raises(OutboundError) as failure:
        await outbound().request("GET", f"http://127.0.0.1:{port}/t", headers={})
    assert failure.value.kind == "ConnectError"


async def test_a_server_that_never_answers_times_out() -> None:
    async with server(silent) as port:
        with pytest.raises(OutboundError) as failure:
            await outbound(timeout=0.3).request("GET", f"http://127.0.0.1:{port}/t", headers={})
    assert failure.value.kind == "ReadTimeout"


async def test_a_certificate_the_cas_do_not_vouch_for_is_refused() -> None:
    async with server(answering(b"{}"), tls=self_signed_server_context()) as port:
        with pytest.raises(OutboundError) as failure:
            await outbound().request("GET", f"https://127.0.0.1:{port}/t", headers={})
    assert failure.value.kind == "ConnectError"
    assert isinstance(failure.value.__cause__.__context__, ssl.SSLCertVerificationError)  # type: ignore[union-attr]


async def test_an_answer_over_the_limit_is_not_read_further() -> None:
    async with server(answering(b"x" * 5000)) as port:
        with pytest.raises(AnswerTooLarge):
            await outbound().request(
                "GET", f"http://127.0.0.1:{port}/t", headers={}, max_bytes=4096
            )


async def test_the_proxy_the_environment_names_carries_the_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    async with server(answering(b"{}", seen)) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = outbound()
        answer = await client.request("GET", "http://vneid.example/userinfo", headers={})
        await client.aclose()
    assert answer.status_code == 200
    assert seen[0].startswith(b"GET http://vneid.example/userinfo HTTP/1.1\r\n")


async def test_no_proxy_names_hosts_called_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on discard
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    seen: list[bytes] = []
    async with server(answering(b"{}", seen)) as port:
        client = outbound()
        await client.request("GET", f"http://127.0.0.1:{port}/t", headers={})
        await client.aclose()
    assert seen[0].startswith(b"GET /t HTTP/1.1\r\n")


def self_signed_server_context() -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
    return context
