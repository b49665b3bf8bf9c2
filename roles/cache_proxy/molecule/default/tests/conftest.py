"""Shared helpers: the three instances of the scenario by name, and the attack report."""

import os

import pytest
import testinfra

PREFIX = os.environ.get("MLW_INSTANCE_PREFIX", "mlw")
CACHE = f"{PREFIX}-cache"
CLIENT = f"{PREFIX}-client"
OUTSIDER = f"{PREFIX}-outsider"

# One line per attack (test_tenant_boundary.py), printed at the end of the run whatever the outcome.
ATTACKS = []


def _host(host, name):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_inventory
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="module")
def cache_host(host):
    return _host(host, CACHE)


@pytest.fixture(scope="module")
def outsider_host(host):
    return _host(host, OUTSIDER)


@pytest.fixture(scope="module")
def client_host(host):
    return _host(host, CLIENT)


def pytest_terminal_summary(terminalreporter):
    if ATTACKS:
        terminalreporter.section("attacks on the cache host")
        for line in ATTACKS:
            terminalreporter.write_line(line)
