"""A sim configuration only ever addresses this machine."""
import pytest

from robot_envs.netaddr import check_sim_address, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "localhost", " LOCALHOST "])
def test_loopback_addresses_are_accepted(host):
    assert is_loopback(host) and check_sim_address(host) == host.strip()


@pytest.mark.parametrize("host", ["172.16.0.2", "192.168.1.10", "10.0.0.2", "fr3.lab", "", "0.0.0.0", "auto"])
def test_other_addresses_and_names_are_refused(host):
    assert not is_loopback(host)
    with pytest.raises(ValueError, match="not a loopback address"):
        check_sim_address(host)
