"""Shared helpers: the two instances of the scenario by name."""

import os

import pytest
import testinfra

PREFIX = os.environ.get("MLW_INSTANCE_PREFIX", "mlw")
CACHE = f"{PREFIX}-cache"
CLIENT = f"{PREFIX}-client"


@pytest.fixture(scope="module")
def cache_host(host):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_inventory
    return testinfra.get_host(f"ansible://{CACHE}?ansible_inventory={inventory}")
