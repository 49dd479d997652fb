"""The supervisor package's public surface: ``open_supervisor`` (the whole system), config
loading, supervision specs and state machines, the supervision tree, and logging setup.
Everything else is internal."""

from actors.errors import ConfigError, RestartIntensityError
from supervisor.config import Config, FieldValueError
from supervisor.config_loader import load_config, parse_config, resolve_secret
from supervisor.logging import configure_logging
from supervisor.otp.backoff import Backoff, BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy, CircuitBreaker, Transition
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildCrashed,
    ChildStateChanged,
    Escalated,
    Observer,
    SupervisionEvent,
)
from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.keeper import ChildStatistics, Keeper, cleanup_scope
from supervisor.otp.spec import ChildSpec, SupervisorSpec
from supervisor.otp.tree import Supervisor, SupervisorStatistics, open_supervisor_tree
from supervisor.system import System, open_supervisor

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "BreakerPolicy",
    "BreakerTransitioned",
    "ChildCrashed",
    "ChildSpec",
    "ChildStateChanged",
    "ChildStatistics",
    "CircuitBreaker",
    "Config",
    "ConfigError",
    "Escalated",
    "FieldValueError",
    "Keeper",
    "Observer",
    "RestartIntensity",
    "RestartIntensityError",
    "SupervisionEvent",
    "Supervisor",
    "SupervisorSpec",
    "SupervisorStatistics",
    "System",
    "Transition",
    "cleanup_scope",
    "configure_logging",
    "load_config",
    "open_supervisor",
    "open_supervisor_tree",
    "parse_config",
    "resolve_secret",
]
