"""A local Synapse homeserver for the tests and the demo: installed into its own venv,
configured from a template, started and stopped as a child process."""

from harmony_matrix.homeserver.config import ServerConfig, free_port, write_config
from harmony_matrix.homeserver.install import SYNAPSE_VERSION, ensure_synapse, synapse_venv
from harmony_matrix.homeserver.server import LocalSynapse, RegisteredUser, SynapseError

__all__ = [
    "SYNAPSE_VERSION",
    "LocalSynapse",
    "RegisteredUser",
    "ServerConfig",
    "SynapseError",
    "ensure_synapse",
    "free_port",
    "synapse_venv",
    "write_config",
]
