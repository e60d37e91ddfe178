"""A private CA for Rocket.Chat under strict verification (Python 3.13 and later): warned about by
--check-config on any Python, and named with its fix when a post is refused."""

from __future__ import annotations

import io
import json
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from rcwebhook.config import certs
from rcwebhook.delivery import transport as delivery
from rcwebhook import sendtest
from tests.conftest import ROOT, make_settings, require_program
from tests.rocketchat_standin import RocketChatStandin

LEAF_EXTENSIONS = """\
subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


def make_ca(directory: Path, *extensions: str) -> tuple:
    """Return (CA certificate, Rocket.Chat's certificate, its key): a CA made by `openssl req -x509` with
    these -addext extensions (none: the plain command), and a leaf for 127.0.0.1 that it signed."""
    openssl = require_program("openssl")
    directory.mkdir()
    ca, ca_key, leaf, leaf_key = (directory / n for n in ("ca.pem", "ca.key", "leaf.pem", "leaf.key"))

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60, cwd=directory)

    addext = [arg for extension in extensions for arg in ("-addext", extension)]
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=rcwebhook test CA", *addext)
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(leaf_key), "-out", "leaf.csr", "-subj", "/CN=localhost")
    (directory / "leaf.ext").write_text(LEAF_EXTENSIONS)
    run("x509", "-req", "-in", "leaf.csr", "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(leaf),
        "-days", "2", "-extfile", "leaf.ext")
    return ca, leaf, leaf_key


@pytest.fixture
def plain_ca(tmp_path):
    return make_ca(tmp_path / "plain")


@pytest.fixture
def good_ca(tmp_path):
    return make_ca(tmp_path / "good", "keyUsage=critical,keyCertSign,cRLSign")


def test_a_plain_openssl_ca_is_warned_about(plain_ca):
    [warning] = certs.ca_file_warnings(str(plain_ca[0]))
    assert f"ROCKETCHAT_CA_FILE={plain_ca[0]}: the CA certificate 'rcwebhook test CA'" in warning
    assert '"CA cert does not include key usage extension"' in warning
    assert "-addext 'keyUsage=critical,keyCertSign,cRLSign'" in warning


def test_a_ca_with_key_usage_and_leaf_certificates_are_not(good_ca):
    ca, leaf, _ = good_ca
    assert certs.ca_file_warnings(str(ca)) == []
    assert certs.ca_file_warnings(str(leaf)) == []  # not a CA


def test_every_ca_of_a_bundle_is_looked_at(plain_ca, good_ca, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(good_ca[0].read_bytes() + b"\n" + plain_ca[0].read_bytes())
    assert len(certs.ca_file_warnings(str(bundle))) == 1


def test_check_config_warns_about_the_ca_file_on_any_python(plain_ca, tmp_path):
    config = tmp_path / "rcwebhook.env"
    config.write_text(f"ROCKETCHAT_WEBHOOK_WARNING=https://127.0.0.1:1/hooks/a/b\nROCKETCHAT_CA_FILE={plain_ca[0]}\n")
    config.chmod(0o600)
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--check-config", "--config", str(config)],
                            capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    assert f"rcwebhook: warning: {config}:2: ROCKETCHAT_CA_FILE=" in result.stderr  # names the file and line
    assert "CA cert does not include key usage extension" in result.stderr


def strict_transport(settings):
    """The transport as Python 3.13 and later make it: VERIFY_X509_STRICT is on by default there."""
    transport = delivery.make_transport(settings)
    transport.context.verify_flags |= ssl.VERIFY_X509_STRICT
    return transport


def standin_with(leaf: Path, key: Path) -> RocketChatStandin:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(leaf), str(key))
    return RocketChatStandin(tls=context)


def test_a_refused_ca_is_named_with_its_fix_by_send_test(plain_ca):
    ca, leaf, key = plain_ca
    with standin_with(leaf, key) as standin:
        url = standin.add_hook("warning")
        settings = make_settings(ROCKETCHAT_WEBHOOK_WARNING=url, ROCKETCHAT_CA_FILE=str(ca))
        out = io.StringIO()
        assert sendtest.run(settings, "warning", out, strict_transport(settings)) == 1
    said = out.getvalue()
    assert "Rocket.Chat's TLS certificate is not trusted (CA cert does not include key usage extension)" in said
    assert "Python 3.13 and later" in said and "-addext 'keyUsage=critical,keyCertSign,cRLSign'" in said
    assert standin.messages("warning") == []


def test_a_ca_with_key_usage_passes_strict_verification(good_ca):
    ca, leaf, key = good_ca
    with standin_with(leaf, key) as standin:
        url = standin.add_hook("warning")
        settings = make_settings(ROCKETCHAT_WEBHOOK_WARNING=url, ROCKETCHAT_CA_FILE=str(ca))
        answer = strict_transport(settings)(url, json.dumps({"text": "hello"}).encode(), 5)
        assert answer.accepted, answer
        assert len(standin.messages("warning")) == 1
