"""`space: auto` against the hand-written space of the same kind: hypervolume, same trials.

    python bench/auto_space.py [--trials 20] [--seeds 0 1 2] [--cases digits mnist1d ...]

Six tasks: the built-in digits (8x8 images; hand-written `digits-cnn`), mnist1d (1-D signals;
`mnist1d-cnn`) and text (tokens; `text-transformer`), and three a user might bring, made here
deterministically with their own teacher (trained once, cached under --work): a tabular CSV
(24 features, 4 classes; `digits-mlp`), an image folder (16x16 RGB shapes, 4 classes;
`digits-cnn`) and 2-channel 1-D signals (N, 2, 64), 5 classes; `mnist1d-cnn`).

Each (task, seed) runs the default search twice, once per space, with the same trials, proxy and
bounds (1/10 of the teacher), no trust report. The hypervolume is that of each front on the
run's own normalised objectives (`nas_student.results.hypervolume`; the teacher and bounds are
the same for both spaces of a task). One torch thread. Each finished run is cached in
results/records/auto_space.json (rerunning skips it); the report is results/records/auto_space.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from nas_student.config import RunConfig
from nas_student.results.hypervolume import front_hypervolume, scales
from nas_student.search import run_search

HERE = Path(__file__).resolve().parent
MODELS = HERE / "auto_space_models.py"
HAND = {"digits": "digits-cnn", "mnist1d": "mnist1d-cnn", "text": "text-transformer",
        "tabular": "digits-mlp", "images": "digits-cnn", "signals": "mnist1d-cnn"}


# --- the user-style tasks: data and a trained teacher --------------------------------------

def _tabular(work: Path) -> dict[str, Any]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=6000, n_features=24, n_informative=10, n_redundant=6, n_classes=4,
                               n_clusters_per_class=2, class_sep=0.8, flip_y=0.02, random_state=0)
    path = work / "tabular.csv"
    if not path.exists():
        cols = ",".join(f"f{i}" for i in range(24)) + ",label"
        np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=cols, comments="", fmt="%.6g")
    return {"data": {"train": str(path), "label": "label"}, "factory": "mlp_teacher",
            "kwargs": {"in_features": 24, "classes": 4}, "x": x.astype(np.float32), "y": y}


def _shapes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """16x16 RGB images of a disc, a square, a triangle or a cross: random place, size, colour."""
    yy, xx = np.mgrid[0:16, 0:16]
    imgs, labels = np.zeros((n, 16, 16, 3), np.float32), rng.integers(0, 4, n)
    for i, c in enumerate(labels):
        cx, cy, r = rng.uniform(5, 11), rng.uniform(5, 11), rng.uniform(2.5, 5)
        if c == 0:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        elif c == 1:
            mask = (abs(xx - cx) <= r * 0.8) & (abs(yy - cy) <= r * 0.8)
        elif c == 2:
            mask = (yy - cy >= -r) & (yy - cy <= r) & (abs(xx - cx) <= (yy - cy + r) / 2)
        else:
            mask = ((abs(xx - cx) <= r / 3) | (abs(yy - cy) <= r / 3)) & (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        imgs[i] = rng.uniform(0, 0.4, 3)
        imgs[i][mask] = rng.uniform(0.4, 1.0, 3)
    imgs += rng.normal(0, 0.15, imgs.shape).astype(np.float32)
    return np.clip(imgs, 0, 1), labels


def _images(work: Path) -> dict[str, Any]:
    from PIL import Image

    x, y = _shapes(3000, np.random.default_rng(0))
    folder = work / "shapes"
    if not folder.exists():
        tmp = work / "shapes.tmp"
        for i, (img, c) in enumerate(zip(x, y)):
            (tmp / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(tmp / f"c{c}" / f"{i:05d}.png")
        tmp.rename(folder)
    return {"data": {"train": str(folder)}, "factory": "cnn_teacher", "kwargs": {"channels": 3, "classes": 4},
            "x": None, "y": None}


def _signals(work: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n, length, t = 6000, 64, np.linspace(0, 1, 64)
    y = rng.integers(0, 5, n)
    freq = np.array([[2, 3], [3, 2], [4, 4], [2, 5], [5, 3]])
    x = np.zeros((n, 2, length), np.float32)
    for i, c in enumerate(y):
        shift = rng.uniform(0, 1)
        for ch in range(2):
            x[i, ch] = np.sin(2 * np.pi * (freq[c, ch] * (t + shift) + ch * c / 5)) * rng.uniform(0.5, 1.5)
    x += rng.normal(0, 0.9, x.shape).astype(np.float32)
    path = work / "signals.npz"
    if not path.exists():
        np.savez(path, x=x, y=y)
    return {"data": {"train": str(path)}, "factory": "cnn1d_teacher", "kwargs": {"channels": 2, "classes": 5},
            "x": x, "y": y}


USER_CASES = {"tabular": _tabular, "images": _images, "signals": _signals}


def _train_teacher(case: str, spec: dict[str, Any], work: Path) -> str:
    """Train the case's teacher once (its factory, Adam, 8 epochs on 80 % of the data)."""
    weights = work / f"{case}_teacher.pt"
    if weights.exists():
        return str(weights)
    from nas_student.config import DataSpec
    from nas_student.tasks.code import load_callable
    from nas_student.tasks.data_files import read_split

    data = read_split(spec["data"]["train"], DataSpec.model_validate(spec["data"]))
    split = data[0]
    perm = torch.randperm(len(split.x), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(perm))
    train_x, train_y, val_x, val_y = split.x[perm[:cut]], split.y[perm[:cut]], split.x[perm[cut:]], split.y[perm[cut:]]
    torch.manual_seed(0)
    model = load_callable(spec["factory_ref"], trust=True, what="teacher factory")(**spec["kwargs"])
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for epoch in range(8):
        model.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(val_x).argmax(1) == val_y).float().mean().item()
        print(f"  teacher {case} epoch {epoch + 1}: val acc {acc:.4f}", flush=True)
    torch.save(model.state_dict(), weights)
    return str(weights)


def _config(case: str, spec: dict[str, Any] | None, weights: str | None, space: str, seed: int, trials: int,
            root: Path) -> RunConfig:
    common = {"space": space, "results_dir": str(root), "device": "cpu", "run": f"{case}-{space}-s{seed}",
              "search": {"trials": trials, "seed": seed, "trust": {"enabled": False}}}
    if spec is None:
        return RunConfig.model_validate({"task": case, **common})
    teacher = {"factory": spec["factory_ref"], "kwargs": spec["kwargs"]}
    if weights:
        teacher["weights"] = weights
    return RunConfig.model_validate({"task": case, "trust_code": True, "teacher": teacher, "data": spec["data"],
                                     **common})


def _one(cfg: RunConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = run_search(cfg)
    objs = list(cfg.search.objectives)
    done = [t for t in out.study.trials if t.state.name == "COMPLETE"]
    families = sorted({t.user_attrs["arch"]["family"] for t in done if "arch" in t.user_attrs})
    return {"hv": front_hypervolume(out.front, objs, scales(objs, out.study.user_attrs)),
            "best": float(out.front["accuracy"].max()) if len(out.front) else 0.0,
            "front": len(out.front), "feasible": sum(bool(t.user_attrs.get("feasible")) for t in done),
            "complete": len(done), "families": families, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cases", nargs="+", default=list(HAND))
    ap.add_argument("--work", default=".bench_cache/auto_space")
    ap.add_argument("--cache", default="results/records/auto_space.json")
    ap.add_argument("--out", default="results/records/auto_space.md")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    for case in args.cases:
        spec = None
        if case in USER_CASES:
            spec = USER_CASES[case](work)
            spec["factory_ref"] = f"{MODELS}:{spec['factory']}"
            weights = _train_teacher(case, spec, work)
        for seed in args.seeds:
            for space in ("auto", HAND[case]):
                key = f"{case}/{space}/s{seed}/t{args.trials}"
                if key in cache:
                    continue
                with tempfile.TemporaryDirectory() as d:
                    cfg = _config(case, spec, weights if spec else None, space, seed, args.trials, Path(d))
                    cache[key] = _one(cfg)
                print(key, cache[key], flush=True)
                cache_path.write_text(json.dumps(cache, indent=1))
    Path(args.out).write_text(report(cache, args.cases, args.seeds, args.trials, os.getloadavg()))
    print(Path(args.out).read_text())


def report(cache: dict[str, Any], cases: list[str], seeds: list[int], trials: int, load: tuple[float, ...]) -> str:
    lines = ["# `space: auto` vs the hand-written space of the same kind", "",
             f"Command: `python bench/auto_space.py --trials {trials} --seeds {' '.join(map(str, seeds))}`. "
             f"{trials} trials per search, default settings (TPE, 150-step KD proxy, bounds 1/10 of the teacher's "
             f"MACs and params, objectives accuracy, MACs, params), no trust report, one torch thread; "
             f"{len(seeds)} seeds. Hypervolume of each front on the run's normalised objectives "
             "(1 = a free, perfect student). Load at the end: " + ", ".join(f"{v:.1f}" for v in load) + ".", "",
             "| task | hand-written space | HV auto, median (min-max) | HV hand, median (min-max) | auto / hand (medians) "
             "| per-seed ratios | best acc auto / hand (medians) | families auto picked on its front |",
             "|---|---|---|---|---:|---|---|---|"]
    worst = None
    for case in cases:
        a = [cache.get(f"{case}/auto/s{s}/t{trials}") for s in seeds]
        h = [cache.get(f"{case}/{HAND[case]}/s{s}/t{trials}") for s in seeds]
        if None in a or None in h:
            continue
        ha, hh = [r["hv"] for r in a], [r["hv"] for r in h]
        ratio = statistics.median(ha) / statistics.median(hh) if statistics.median(hh) else float("nan")
        if ratio == ratio:  # not NaN (an empty hand-written front)
            worst = ratio if worst is None else min(worst, ratio)
        fams = sorted({f for r in a for f in r["families"]})
        per_seed = ", ".join(f"{x / y:.3f}" if y else "n/a" for x, y in zip(ha, hh))
        lines.append(
            f"| {case} | `{HAND[case]}` | {statistics.median(ha):.4f} ({min(ha):.4f}-{max(ha):.4f}) | "
            f"{statistics.median(hh):.4f} ({min(hh):.4f}-{max(hh):.4f}) | {ratio:.3f} | "
            f"{per_seed} | "
            f"{statistics.median(r['best'] for r in a):.4f} / {statistics.median(r['best'] for r in h):.4f} | "
            f"{', '.join(fams)} (sampled) |")
    if worst is not None:
        lines += ["", f"auto space vs hand-written: {100 * (worst - 1):+.1f} % hypervolume "
                      "(the worst task's ratio of medians; goal: -5 % or better)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
