"""Results: study -> DataFrame -> Pareto front (pure functions; the CLI only prints)."""

from nas_student.results.frame import trials_frame
from nas_student.results.pareto import non_dominated, pareto_front

__all__ = ["non_dominated", "pareto_front", "trials_frame"]
