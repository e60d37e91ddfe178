"""A look at the CA certificates of ROCKETCHAT_CA_FILE: what strict verification will refuse.

Python 3.13 and later verify certificates strictly (VERIFY_X509_STRICT): a CA made with a plain
`openssl req -x509`, which has no keyUsage extension, is refused with "CA cert does not include
key usage extension" where Python 3.11 accepted it. The ssl module does not show extensions, so
the certificates are read here from their DER encoding (only as far as these checks need).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.S)
_BASIC_CONSTRAINTS = bytes((0x55, 0x1D, 0x13))  # 2.5.29.19
_KEY_USAGE = bytes((0x55, 0x1D, 0x0F))  # 2.5.29.15
_SUBJECT_KEY_ID = bytes((0x55, 0x1D, 0x0E))  # 2.5.29.14
_COMMON_NAME = bytes((0x55, 0x04, 0x03))  # 2.5.4.3
_KEY_CERT_SIGN = 0x04  # bit 5 of keyUsage's first byte


class Extension(NamedTuple):
    critical: bool
    value: bytes


class Certificate(NamedTuple):
    name: str
    self_issued: bool
    extensions: dict  # OID bytes -> Extension


def _items(data: bytes, start: int = 0, end: Optional[int] = None) -> Iterator[Tuple[int, int, int]]:
    """Yield (tag, start, end) of each DER element between `start` and `end`."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        if pos + length > end:
            raise ValueError("truncated DER")
        yield tag, pos, pos + length
        pos += length


def _common_name(data: bytes, start: int, end: int) -> str:
    for _, rdn_start, rdn_end in _items(data, start, end):
        for _, attr_start, attr_end in _items(data, rdn_start, rdn_end):
            (_, oid_start, oid_end), (_, value_start, value_end) = list(_items(data, attr_start, attr_end))[:2]
            if data[oid_start:oid_end] == _COMMON_NAME:
                return data[value_start:value_end].decode("utf-8", "replace")
    return ""


def parse(der: bytes) -> Certificate:
    """Return the subject's common name, whether it issued itself, and the extensions of a certificate."""
    [(_, cert_start, cert_end)] = list(_items(der))[:1]
    _, tbs_start, tbs_end = next(_items(der, cert_start, cert_end))
    fields = list(_items(der, tbs_start, tbs_end))
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    issuer, subject = fields[2], fields[4]
    extensions = {}
    for tag, start, end in fields[6:]:
        if tag != 0xA3:  # [3] extensions
            continue
        _, seq_start, seq_end = next(_items(der, start, end))
        for _, ext_start, ext_end in _items(der, seq_start, seq_end):
            parts = list(_items(der, ext_start, ext_end))
            critical = len(parts) == 3 and der[parts[1][1]:parts[1][2]] != b"\x00"
            oid, value = parts[0], parts[-1]
            extensions[der[oid[1]:oid[2]]] = Extension(critical, der[value[1]:value[2]])
    return Certificate(_common_name(der, subject[1], subject[2]),
                       der[issuer[1]:issuer[2]] == der[subject[1]:subject[2]], extensions)


def _is_ca(cert: Certificate) -> bool:
    constraints = cert.extensions.get(_BASIC_CONSTRAINTS)
    if constraints is None:
        return cert.self_issued  # an X.509 v1 root
    _, start, end = next(_items(constraints.value))
    return any(tag == 0x01 and constraints.value[s:e] != b"\x00" for tag, s, e in _items(constraints.value, start, end))


def strict_problems(cert: Certificate) -> List[str]:
    """Return what strict verification refuses in this CA certificate, in OpenSSL's words, with the fix."""
    problems = []
    usage = cert.extensions.get(_KEY_USAGE)
    if usage is None:
        problems.append("it has no keyUsage extension (\"CA cert does not include key usage extension\"): "
                        "issue it again with -addext 'keyUsage=critical,keyCertSign,cRLSign'")
    elif len(usage.value) < 4 or not usage.value[3] & _KEY_CERT_SIGN:  # BIT STRING: tag, length, unused bits
        problems.append("its keyUsage lacks keyCertSign: issue it again with "
                        "-addext 'keyUsage=critical,keyCertSign,cRLSign'")
    constraints = cert.extensions.get(_BASIC_CONSTRAINTS)
    if constraints is not None and not constraints.critical:
        problems.append("its basicConstraints is not critical (\"Basic Constraints of CA cert not marked "
                        "critical\"): issue it again with -addext 'basicConstraints=critical,CA:TRUE'")
    if _SUBJECT_KEY_ID not in cert.extensions:
        problems.append("it has no subjectKeyIdentifier (\"Missing Subject Key Identifier\"): issue it again "
                        "with -addext 'subjectKeyIdentifier=hash'")
    return problems


def ca_file_warnings(path: str) -> List[str]:
    """Return a warning for each CA certificate in the PEM file at `path` that strict verification refuses."""
    try:
        text = Path(path).read_bytes()
    except OSError:
        return []  # the transport reports an unreadable file when it loads it
    warnings = []
    for number, match in enumerate(_PEM.finditer(text), 1):
        try:
            cert = parse(base64.b64decode(match.group(1)))
            problems = strict_problems(cert) if _is_ca(cert) else []
        except (ValueError, IndexError, StopIteration):
            warnings.append(f"ROCKETCHAT_CA_FILE={path}: certificate {number} cannot be read")
            continue
        if problems:
            warnings.append(
                f"ROCKETCHAT_CA_FILE={path}: the CA certificate {cert.name or number!r} is refused by Python 3.13 and "
                f"later (Debian 13 and newer), which verify certificates strictly: {'; '.join(problems)}")
    return warnings
