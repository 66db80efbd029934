"""Link URLs (ota_tool/link_url.py): what each good form parses to. The bad forms are in the CLI's bad-input sweep
(test_cli_rules.py: one line naming the problem, exit 2, for every command that takes --port)."""

from __future__ import annotations

import pytest

from ota_tool import link_url
from ota_tool.errors import BadInput


@pytest.mark.parametrize(
    ("text", "kind", "host", "port", "path"),
    [
        ("/dev/ttyUSB0", link_url.SERIAL, "", 1337, "/dev/ttyUSB0"),
        ("state/console", link_url.SERIAL, "", 1337, "state/console"),
        ("COM3", link_url.SERIAL, "", 1337, "COM3"),
        ("udp://10.64.0.17", link_url.UDP, "10.64.0.17", 1337, ""),
        ("UDP://10.64.0.17:5683", link_url.UDP, "10.64.0.17", 5683, ""),
        ("udp://meter-17.apn.example/", link_url.UDP, "meter-17.apn.example", 1337, ""),
        ("udp://[fd00::17]:1337", link_url.UDP, "fd00::17", 1337, ""),
    ],
)
def test_good_links(text, kind, host, port, path):
    u = link_url.parse(text)
    assert (u.kind, u.host, u.port, u.path) == (kind, host, port, path)


def test_a_udp_link_prints_as_it_is_reached():
    assert str(link_url.parse("udp://10.64.0.17")) == "udp://10.64.0.17:1337"
    assert str(link_url.parse("udp://[fd00::17]")) == "udp://[fd00::17]:1337"


def test_a_udp_link_can_name_the_host_s_own_port():
    u = link_url.parse("udp://127.9.0.4:1337?from=40123")
    assert (u.host, u.port, u.local_port) == ("127.9.0.4", 1337, 40123)
    assert str(u) == "udp://127.9.0.4:1337?from=40123"
    assert link_url.parse("udp://10.64.0.17").local_port is None


def test_a_modem_link_names_the_device_the_meter_and_the_modem_socket_s_port():
    u = link_url.parse("modem:///dev/ttyUSB2?to=10.64.0.17&apn=meters.example")
    assert (u.kind, u.path, u.host, u.port, u.local_port, u.params) == (
        link_url.MODEM,
        "/dev/ttyUSB2",
        "10.64.0.17",
        1337,
        None,
        {"to": "10.64.0.17", "apn": "meters.example"},
    )
    u = link_url.parse("modem:///dev/pts/7?to=127.80.1.2:4000&from=40555")
    assert (u.path, u.host, u.port, u.local_port) == ("/dev/pts/7", "127.80.1.2", 4000, 40555)
    assert link_url.parse(str(u)) == u


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("udp://10.0.0.1:70000", "1 to 65535"),
        ("udp://", "no host"),
        ("udp:/10.0.0.1", "two slashes"),
        ("modem:///dev/ttyUSB2", "?to=ADDR"),
        ("modem:///dev/ttyUSB2?to=10.0.0.1&pin=1", "unknown modem parameter 'pin'"),
        ("udp://999.1.1.1", "neither an IP address nor a host name"),
        ("udp://10.0.0.1?from=70000", "from= takes"),
        ("udp://10.0.0.1?from=1&from=2", "from= takes"),
        ("udp://10.0.0.1?to=5", "unknown udp parameter 'to'"),
        ("udp://10.0.0.1?from", "NAME=VALUE"),
        ("modem:///dev/ttyUSB2?to=meter.example", "IPv4 address"),
        ("modem:///dev/ttyUSB2?to=fd00::1", "IPv4 address"),
        ("modem:///dev/ttyUSB2?to=10.0.0.1:0", "1 to 65535"),
        ("modem:///dev/ttyUSB2?to=10.0.0.1:", "1 to 65535"),
        ("modem:///dev/ttyUSB2?to=10.0.0.1&from=70000", "from= takes"),
        ("modem:///dev/ttyUSB2?to=10.0.0.1&apn=a%22b", "apn= takes"),
    ],
)
def test_bad_links_name_the_problem(text, words):
    with pytest.raises(BadInput) as e:
        link_url.parse(text)
    assert words in str(e.value)


def test_probes_after_a_reset_wait_a_radio_round_trip_over_udp():
    from ota_tool.push import PROBE_TIMEOUT, probe_timeout

    assert probe_timeout("/dev/ttyUSB0", 30.0) == PROBE_TIMEOUT
    assert probe_timeout("udp://10.64.0.17", 30.0) == 30.0
