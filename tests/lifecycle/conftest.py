"""Hypothesis budgets for the lifecycle core's state-machine test.

``MCPVISOR_HYPOTHESIS_PROFILE=thorough`` runs ten times as many machines, each
longer; any other value (or none) runs the CI budget.
"""

import os

from hypothesis import HealthCheck, settings
from lifecycle_expect import PROFILE

# (max_examples, stateful_step_count)
_budgets = {"ci": (500, 50), "thorough": (5000, 80)}
_max_examples, _steps = _budgets.get(
    os.environ.get("MCPVISOR_HYPOTHESIS_PROFILE", ""), _budgets["ci"]
)

settings.register_profile(
    PROFILE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    max_examples=_max_examples,
    stateful_step_count=_steps,
)
