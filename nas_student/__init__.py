"""nas-student: search the best small student for a trained teacher (architecture search +
knowledge distillation, Pareto-optimal under a cost budget).

``nas_student.load_student(spec)`` rebuilds an exported student (see ``nas-student export``).
"""

from nas_student.load import load_student

__version__ = "0.1.0"
__all__ = ["__version__", "load_student"]
