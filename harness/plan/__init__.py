"""The plan: a scenario's every wiring decision as frozen typed data, made without root.

``plan(scenario)`` decides and validates; a builder executes the :class:`SitePlan`;
``describe(plan)`` prints it on one screen. The kernel command line contract between
the Control Plane and the node agent lives here too (:mod:`harness.plan.cmdline`).
"""

from harness.plan.cmdline import LOCAL_CMDLINE, NODE_CMDLINE, KernelCmdline
from harness.plan.describe import describe
from harness.plan.errors import PlanError
from harness.plan.items import HostOn, SitePlan
from harness.plan.planner import plan

__all__ = ["LOCAL_CMDLINE", "NODE_CMDLINE", "HostOn", "KernelCmdline", "PlanError",
           "SitePlan", "describe", "plan"]
