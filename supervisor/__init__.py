"""The supervisor package's public surface: config loading, supervision specs and state
machines, the supervision tree, and logging setup. Everything else is internal."""

from actors.errors import ConfigError, RestartIntensityError
from supervisor.backoff import Backoff, BackoffPolicy
from supervisor.breaker import BreakerPolicy, CircuitBreaker, Transition
from supervisor.config import Config, FieldValueError
from supervisor.config_loader import load_config, parse_config, resolve_secret
from supervisor.events import (
    BreakerTransitioned,
    ChildCrashed,
    ChildStateChanged,
    Escalated,
    Observer,
    SupervisionEvent,
)
from supervisor.intensity import RestartIntensity
from supervisor.keeper import ChildStatistics, Keeper, cleanup_scope
from supervisor.logging import configure_logging
from supervisor.spec import ChildSpec, SupervisorSpec
from supervisor.tree import (
    Supervisor,
    SupervisorStatistics,
    open_supervisor_tree,
    supervisor_child,
)

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
    "Transition",
    "cleanup_scope",
    "configure_logging",
    "load_config",
    "open_supervisor_tree",
    "parse_config",
    "resolve_secret",
    "supervisor_child",
]
