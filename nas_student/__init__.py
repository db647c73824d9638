"""nas-student: search the best small student for a trained teacher (architecture search +
knowledge distillation, Pareto-optimal under a cost budget).

``nas_student.build(spec)`` rebuilds an exported student (see ``nas-student export``).
"""

from nas_student.build import build

__version__ = "0.1.0"
__all__ = ["__version__", "build"]
