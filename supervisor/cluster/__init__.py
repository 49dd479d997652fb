"""Scale-out, part 1: several daemons share one connection per exchange through Redis.

Modules: ``lease`` (leadership with fencing epochs: a pure timing core and the Lua scripts),
``wire`` (events <-> stream entries, pure), ``feed`` (the leader's fenced writer and the
readers), ``demand`` (what each node wants, with node liveness), ``member`` (one exchange on
one node: follow, challenge, lead), ``redis`` (the one place coredis is imported).

Nothing here is imported without a ``[cluster]`` section: ``supervisor.feeds`` imports it
lazily, so a single daemon never loads coredis.
"""
