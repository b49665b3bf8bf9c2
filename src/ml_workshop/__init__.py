"""ml-workshop: Python logic behind the Ansible roles (hub spawner, allocation, accounts)."""

__version__ = "0.1.0"
