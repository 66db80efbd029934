"""A meter's link named by one string, in the manner of pyserial's URL handlers: a device path (`/dev/ttyUSB0`, an
emulator's `STATE/console`), `udp://HOST[:PORT][?from=LPORT]` (SMP over UDP through an IP route to the meter: the
operator's private APN, a test network; port 1337 by default; `from` binds the host's own UDP port, for a meter whose
module answers only the head-end address it was configured with), and
`modem:///dev/ttyUSB2?to=ADDR[:PORT][&apn=NAME][&from=LPORT]` (SMP over UDP through a USB NB-IoT modem driven with
AT commands, ota_tool/modem_link.py: the meter's IPv4 address and port, 1337 by default; the APN for the modem's data
context; the modem socket's own port, for a meter that answers only its configured head-end). Parsing only: the
link itself is ota_tool/link.py."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .errors import BadInput

SMP_UDP_PORT = 1337  # SMP over UDP (STANDARDS.md)
MAX_TIMEOUT = 3600.0  # the longest per-request wait a link takes, s
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000, 2000000,
              3000000)  # the serial line rates a link takes
SERIAL = "serial"
UDP = "udp"
MODEM = "modem"
SCHEMES = (UDP, MODEM)
MODEM_PARAMS = ("to", "apn", "from")
UDP_PARAMS = ("from",)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*\.?"
)
_APN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,98}[A-Za-z0-9])?")  # 3GPP TS 23.003: labels of letters, digits, '-'
URL_FORMS = ("a device path (/dev/ttyUSB0), udp://HOST[:PORT][?from=LPORT] or "
             "modem:///dev/ttyUSB2?to=ADDR[:PORT][&apn=NAME][&from=LPORT]")


@dataclass(frozen=True)
class LinkUrl:
    kind: str  # SERIAL, UDP or MODEM
    path: str = ""  # SERIAL, MODEM: the device
    host: str = ""  # UDP: the meter's address; MODEM: the meter's IPv4 address (`to`)
    port: int = SMP_UDP_PORT  # the meter's port
    local_port: int | None = None  # UDP: the host's own port, MODEM: the modem socket's (`from`); None: any free one
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.kind == UDP:
            host = f"[{self.host}]" if ":" in self.host else self.host
            tail = "" if self.local_port is None else f"?from={self.local_port}"
            return f"udp://{host}:{self.port}{tail}"
        if self.kind == MODEM:
            return f"modem://{self.path}?" + "&".join(f"{k}={v}" for k, v in self.params.items())
        return self.path


def parse(text: str) -> LinkUrl:
    """The link `text` names; BadInput naming the problem for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput("--port is empty: give " + URL_FORMS)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadInput(f"--port {text!r} holds control characters: give " + URL_FORMS)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if m is None:
        if text.lower().startswith(tuple(f"{x}:" for x in SCHEMES)):
            raise BadInput(f"--port {text!r}: a link URL starts SCHEME:// (two slashes); give " + URL_FORMS)
        if "://" in text:
            raise BadInput(f"--port {text!r}: not a link URL; give " + URL_FORMS)
        return LinkUrl(SERIAL, path=text)
    scheme = m.group(1).lower()
    if scheme not in SCHEMES:
        raise BadInput(f"--port {text!r}: unknown link scheme {scheme}://; give " + URL_FORMS)
    parts = urlsplit(text)
    if scheme == UDP:
        return _udp(text, parts)
    return _modem(text, parts)


def _udp(text: str, parts) -> LinkUrl:
    if parts.path not in ("", "/") or parts.fragment:
        raise BadInput(f"--port {text!r}: a udp link is udp://HOST[:PORT][?from=LPORT] and nothing more")
    if parts.username is not None or parts.password is not None:
        raise BadInput(f"--port {text!r}: a udp link takes no user name or password")
    host = parts.hostname or ""
    if not host:
        raise BadInput(f"--port {text!r}: no host; give udp://HOST[:PORT], e.g. udp://10.64.0.17")
    check_host(host, text)
    try:
        port = parts.port
    except ValueError:
        raise BadInput(f"--port {text!r}: the port must be a number from 1 to 65535") from None
    if port is None:
        if parts.netloc.endswith(":"):
            raise BadInput(f"--port {text!r}: the port after ':' is empty")
        port = SMP_UDP_PORT
    if not 1 <= port <= 65535:
        raise BadInput(f"--port {text!r}: the port must be a number from 1 to 65535")
    return LinkUrl(UDP, host=host, port=port, local_port=_local_port(text, parts.query))


def _local_port(text: str, query: str) -> int | None:
    """The host's own UDP port from `?from=LPORT`, or None without a query."""
    if not query:
        return None
    try:
        q = parse_qs(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadInput(f"--port {text!r}: the part after '?' is not NAME=VALUE&...") from None
    unknown = sorted(set(q) - set(UDP_PARAMS))
    if unknown:
        raise BadInput(f"--port {text!r}: unknown udp parameter {unknown[0]!r}; it takes " + ", ".join(UDP_PARAMS))
    return _from(text, q["from"], "the host's own UDP port")


def _from(text: str, v: list[str], what: str) -> int:
    if len(v) != 1 or not _port_number(v[0]):
        raise BadInput(f"--port {text!r}: from= takes {what} once, a number from 1 to 65535")
    return int(v[0])


def _port_number(v: str) -> bool:
    return v.isdigit() and 1 <= int(v) <= 65535


def check_host(host: str, text: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host) or not _HOSTNAME.fullmatch(host):
        raise BadInput(f"--port {text!r}: {host!r} is neither an IP address nor a host name")


def _modem(text: str, parts) -> LinkUrl:
    if parts.netloc:
        raise BadInput(
            f"--port {text!r}: a modem link names its device after three slashes: modem:///dev/ttyUSB2?to=ADDR"
        )
    if not parts.path or parts.path == "/":
        raise BadInput(f"--port {text!r}: no modem device; give modem:///dev/ttyUSB2?to=ADDR")
    try:
        q = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise BadInput(f"--port {text!r}: the part after '?' is not NAME=VALUE&...") from None
    unknown = sorted(set(q) - set(MODEM_PARAMS))
    if unknown:
        raise BadInput(f"--port {text!r}: unknown modem parameter {unknown[0]!r}; it takes " + ", ".join(MODEM_PARAMS))
    for k, v in q.items():
        if len(v) != 1 or not v[0]:
            raise BadInput(f"--port {text!r}: give {k}= once, with a value")
    if "to" not in q:
        raise BadInput(f"--port {text!r}: a modem link needs the meter's address: ?to=ADDR")
    addr, colon, port = q["to"][0].partition(":")
    try:
        ipaddress.IPv4Address(addr)
    except ValueError:
        raise BadInput(f"--port {text!r}: to= takes the meter's IPv4 address (a modem sends to an address, "
                       f"it resolves no name): {addr!r} is none") from None
    if colon and not _port_number(port):
        raise BadInput(f"--port {text!r}: the meter's port after to=ADDR: must be a number from 1 to 65535")
    if "apn" in q and not _APN.fullmatch(q["apn"][0]):
        raise BadInput(f"--port {text!r}: apn= takes an access point name (letters, digits, '-' and '.')")
    local = _from(text, q["from"], "the modem socket's own port") if "from" in q else None
    return LinkUrl(MODEM, path=parts.path, host=addr, port=int(port) if colon else SMP_UDP_PORT, local_port=local,
                   params={k: v[0] for k, v in q.items()})
