"""The production stack plus the chaos overlay, brought up on this machine as a drill target.

- compose.py: which compose command, the project's files and environment (secrets never on a command line).
- lifecycle.py: `deployment_up()` / `deployment_down()` and the target files they write and remove
  (`python -m chaos deployment up|down`, chaos/cli/deployment.py).
"""

from chaos.deployment.compose import ComposeError, ComposeProject, compose_command
from chaos.deployment.lifecycle import Deployment, DeploymentError, Ports, deployment_down, deployment_up

__all__ = [
    "ComposeError",
    "ComposeProject",
    "Deployment",
    "DeploymentError",
    "Ports",
    "compose_command",
    "deployment_down",
    "deployment_up",
]
