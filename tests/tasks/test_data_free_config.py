import torch

from nas_student.config import RunConfig
from nas_student.tasks import task_for_config


def test_a_data_free_run_trains_on_synthetic_inputs_within_the_task_range(digits_task):
    cfg = RunConfig.model_validate({"task": "digits", "device": "cpu", "data_free": {"enabled": True, "samples": 40, "steps": 3}})
    task = task_for_config(cfg, "cpu")
    assert task.train.x.shape == (40, 1, 8, 8)
    assert float(task.train.x.min()) >= 0.0 and float(task.train.x.max()) <= 1.0  # digits' own range
    assert not any(torch.equal(task.train.x[0], x) for x in digits_task.train.x)
    assert torch.equal(task.test.x, digits_task.test.x)  # scored on the real test split
    assert task.teacher_info["data_free"]["samples"] == 40
