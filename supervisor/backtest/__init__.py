"""``botcriptofy backtest``: a config's bots replayed on recorded data, with a parameter grid.

* ``grid``: ``--param PATH=V1,V2`` parsed and expanded into config variants (pure);
* ``runner``: one backtest (``run_backtest``): bots, journal and ``actors.replay`` under the
  replay clock;
* ``command``: the command line, the worker processes and the grid summary.
"""
