"""The platform file's ``daemon:`` section: validation and what it asks of distemd."""

from __future__ import annotations

import pytest

from pydistem.adapters.prepare import BootstrapSettings
from pydistem.cli.deploy import distemd_command
from pydistem.errors import ValidationError
from pydistem.model.daemon import DaemonSettings
from pydistem.model.platform_file import platform_from_dict


def test_no_section_asks_nothing():
    p = platform_from_dict({})
    assert p.daemon == DaemonSettings()
    assert p.daemon.distemd_args() == []
    assert distemd_command(4567, p.daemon)[-3:] == ["-d", "--port", "4567"]


def test_compat_defaults_to_loopback():
    d = platform_from_dict({"daemon": {"distem_compat": True}}).daemon
    assert d.distemd_args() == ["--distem-compat", "--distem-compat-allow", "127.0.0.0/8,::1/128"]
    assert distemd_command(4600, d)[-4:] == ["4600", *d.distemd_args()]


@pytest.mark.parametrize("allow", ["10.0.0.1/8, 192.168.1.0/24", ["10.0.0.0/8", "192.168.1.0/24"]])
def test_allow_as_string_or_list_normalised(allow):
    d = platform_from_dict({"daemon": {"distem_compat": True, "distem_compat_allow": allow}}).daemon
    assert d.distem_compat_allow == ["10.0.0.0/8", "192.168.1.0/24"]
    assert d.allow_string() == "10.0.0.0/8,192.168.1.0/24"


@pytest.mark.parametrize(
    ("section", "field", "reason"),
    [
        ({"distem_compat_allow": "10.0.0.0/33"}, "daemon.distem_compat_allow", "not a network"),
        ({"distem_compat_allow": []}, "daemon.distem_compat_allow", "CIDR"),
        ({"distem_compat": "perhaps"}, "daemon.distem_compat", "bool"),
        ({"port": 4567}, "daemon.port", "unknown key"),
    ],
)
def test_bad_section_names_the_field(section, field, reason):
    with pytest.raises(ValidationError) as exc:
        platform_from_dict({"daemon": section})
    assert exc.value.field == field
    assert reason in exc.value.reason


def test_section_must_be_a_mapping():
    with pytest.raises(ValidationError) as exc:
        platform_from_dict({"daemon": ["distem_compat"]})
    assert exc.value.field == "daemon"


def test_bootstrap_settings_take_the_section():
    base = BootstrapSettings()
    assert base.with_daemon(DaemonSettings()) is base
    got = base.with_daemon(DaemonSettings(distem_compat=True, distem_compat_allow="10.0.0.0/8"))
    opts = got.to_options(None)
    assert (opts.distem_compat, opts.distem_compat_allow) == (True, "10.0.0.0/8")
    assert base.distem_compat is False  # a copy
