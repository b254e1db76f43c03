"""The builder: a scenario's plan made real, its steps played, the run judged.

:class:`~harness.builder.runner.ScenarioRunner` executes a
:class:`~harness.plan.SitePlan` on this host with the component kinds it is given
(:mod:`harness.builder.kinds`); ``flexlab run`` (:mod:`.cli_run`) and the pytest
scenario items (:mod:`.pytest_items`) drive it, :mod:`.reporting` publishes a run.
"""
