"""Serve cells: MLPerf LoadGen scenarios over the run's checkpoint (serve.py), its SUT and QSL,
the server scenario's QPS search. They reuse the infer workload's session, data and scoring."""
