"""The judge: a run's verdicts from what it saved, below every consumer.

``judge()`` turns a plan, the decoded captures and what the run observed into a
:class:`RunResult`; scenario runs, reports, certification and site-check all import
the result types from here, so nothing above has to import the runner to read a run.
"""
