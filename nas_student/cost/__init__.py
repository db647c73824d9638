"""Cost counting: MACs/params (profile), latency and on-disk size of a model."""

from nas_student.cost.latency import measure_latency, model_size_bytes
from nas_student.cost.profile import Cost, CostError, profile

__all__ = ["Cost", "CostError", "measure_latency", "model_size_bytes", "profile"]
