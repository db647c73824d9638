"""Does the search earn its keep? Searched students against every alternative a user has, all
fully trained with the same KD recipe and steps, on mnist1d, at three MACs budgets.

For each budget (1/10, 1/30, 1/100 of the teacher's MACs; params at most 1/10) and seed s:

1. nas-student's default search (mnist1d-cnn, TPE, 40 students, seed s, --focus best): the
   student each recommendation rule picks from its front (best = the most accurate within the
   budget, within:1), with the default proxy (every student 150 steps) and with steps by depth
   (``--depth-power 0.5``); and with ``--focus front`` (the default before): knee, within:1,
   within:2, best;
2. the teacher shrunk uniformly: each stage's depth halved, every width scaled by one factor
   (the largest within the budget);
3. a hand-designed student: the MNIST-1D paper's ConvBase (Greydanus 2020: three stride-2
   convs, ReLU, a flattened linear head), its channels scaled to the budget;
4. the best student (proxy validation accuracy) of a random search (nas-student, sampler
   random, same space, 40 students, seed s);
5. the best student of the plain Optuna script a user would write (bench/peer_optuna.py:
   TPE over its own CNN space, fvcore MACs, teacher run at every step; 40 trials, seed s);
6. at 1/30 for the searched (most accurate) student: CE only, KD + feature hints, 10 % of the
   labels (KD and CE), data-free (inputs synthesised from the teacher).

Every student is fully trained (nas-student's full recipe: 3000 steps, batch 64, Adam lr 3e-3
with cosine decay, T = 4, alpha 0.9, beta 0.1) with init/data seed s and scored on the 4,000
test signals; then CPU latency (one thread, batch 1 and 64) of every distinct student is
measured side by side in one pass. Every measurement is cached in results/records/proof_mnist1d.json
as soon as it ends (an interrupted run resumes); `--part` splits the work over processes.

    python bench/proof_mnist1d.py [--seeds 3] [--part searches|train-A|train-B|all]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import peer_optuna  # noqa: E402

from nas_student.config import Constraints, RunConfig, SearchSettings, TrustSettings  # noqa: E402
from nas_student.cost import profile  # noqa: E402
from nas_student.cost.latency import measure_latency  # noqa: E402
from nas_student.distill import evaluate, predict, train  # noqa: E402
from nas_student.distill.recipe import DEPTH_POWER, FeatureKD, ProxyRecipe  # noqa: E402
from nas_student.families import build  # noqa: E402
from nas_student.families.base import describe  # noqa: E402
from nas_student.spaces import arch_hash  # noqa: E402
from nas_student.tasks import load_task  # noqa: E402
from nas_student.tasks.mnist1d import TEACHER_ARCH  # noqa: E402
from nas_student.full_training import default_recipe  # noqa: E402

BUDGETS = {"1/10": 10, "1/30": 30, "1/100": 100}
TRIALS = 40
FULL = default_recipe(ProxyRecipe())
CACHE = Path("results/records/proof_mnist1d.json")
ONLY: str | None = None  # --only-budget


class Cache:
    """Measurements by key in one JSON file, shared by processes (a lock around each write)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        have = self._read()
        if key in have:
            return have[key]
        t0 = time.perf_counter()
        value = {**fn(), "wall_s": time.perf_counter() - t0}
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            have = self._read()
            have[key] = value
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(have, indent=1))
            tmp.replace(self.path)
        print(f"  {key}: { {k: v for k, v in value.items() if k not in ('front', 'trials')} }", flush=True)
        return value


# ------------------------------------------------------------------ students by kind

class PaperCNN(nn.Module):
    """ConvBase of the MNIST-1D paper (Greydanus 2020, notebooks/models.py), for 40-sample
    inputs: conv k5/s2 -> conv k3/s2 -> conv k3/s2 (ReLU, padding 1), flatten, linear."""

    def __init__(self, channels: int, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(channels * 5, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv3(self.conv2(self.conv1(x).relu()).relu()).relu()
        return self.linear(h.flatten(1))


def make(spec: dict[str, Any], io: Any) -> nn.Module:
    """A student from its spec: {"kind": "arch", "arch": ...} | {"kind": "paper", "channels": c}
    | {"kind": "peer", "params": ...}."""
    if spec["kind"] == "arch":
        return build(spec["arch"], io)
    if spec["kind"] == "paper":
        return PaperCNN(spec["channels"])
    return peer_optuna.build(spec["params"])


def key_of(spec: dict[str, Any]) -> str:
    body = spec.get("arch") or spec.get("params") or {"channels": spec.get("channels")}
    return f"{spec['kind']}-{arch_hash(body)}"


def label(spec: dict[str, Any]) -> str:
    if spec["kind"] == "arch":
        return describe(spec["arch"])
    if spec["kind"] == "paper":
        return f"paper ConvBase c{spec['channels']}"
    p = spec["params"]
    return "peer cnn [" + ",".join(f"{c}k{k}/s{s}" for c, k, s in zip(p["channels"], p["kernels"], p["strides"])) + "]"


def costs(spec: dict[str, Any], io: Any) -> tuple[int, int]:
    c = profile(make(spec, io), io.example_input())
    return c.macs, c.params


def largest_within(make_spec: Callable[[int], dict[str, Any]], io: Any, max_macs: float, max_params: float,
                   top: int = 512) -> dict[str, Any]:
    """The spec with the largest integer knob whose costs stay within the bounds."""
    best = make_spec(1)
    for k in range(1, top):
        spec = make_spec(k)
        m, p = costs(spec, io)
        if m > max_macs or p > max_params:
            break
        best = spec
    return best


def shrunk_teacher(f_percent: int) -> dict[str, Any]:
    f = f_percent / 100
    return {"kind": "arch", "arch": {
        **TEACHER_ARCH, "stem_width": max(1, round(TEACHER_ARCH["stem_width"] * f)),
        "stages": [{**s, "depth": max(1, s["depth"] // 2), "width": max(1, round(s["width"] * f))}
                   for s in TEACHER_ARCH["stages"]]}}


# ------------------------------------------------------------------ searches

def our_search(budget: int, seed: int, sampler: str, root: Path,
               objectives: tuple[str, ...] = ("accuracy", "macs", "params"), by_depth: bool = False,
               proxy: tuple[str, ProxyRecipe] | None = None) -> dict[str, Any]:
    """A search with the default proxy (every student 150 steps) or, ``by_depth``, with steps by
    depth (``--depth-power 0.5``), or ``proxy`` (a run-name tag and the recipe)."""
    from nas_student.search import run_search

    tag = ("" if len(objectives) == 3 else "-" + "-".join(objectives)) + ("-depth" if by_depth else "")
    tag += f"-{proxy[0]}" if proxy else ""
    cfg = RunConfig(task="mnist1d", space="mnist1d-cnn", results_dir=str(root), device="cpu",
                    run=f"{sampler}{tag}-b{budget}-s{seed}",
                    budget=proxy[1] if proxy else ProxyRecipe(depth_power=DEPTH_POWER) if by_depth else ProxyRecipe(depth_power=0),
                    constraints=Constraints(macs_ratio=1 / budget, params_ratio=0.1),
                    search=SearchSettings(trials=TRIALS, seed=seed, sampler=sampler, objectives=objectives,
                                          trust=TrustSettings(enabled=False)))
    out = run_search(cfg)
    from nas_student.results import pareto_front

    front = pareto_front(out.trials, ["accuracy", "macs", "params"]).sort_values("macs")  # whatever was searched
    rows = [{"trial": int(r["trial"]), "arch": json.loads(r["arch"]), "accuracy": float(r["accuracy"]),
             "macs": float(r["macs"]), "params": float(r["params"])} for _, r in front.iterrows()]
    df = out.trials
    trained = df[(df["state"] == "COMPLETE") & df["feasible"].astype(bool) & df["accuracy"].notna()]
    return {"front": rows, "trained": int(len(trained)),
            "train_s": float(trained["train_s"].sum()), "search_s": float(df["duration_s"].sum())}


def peer_search(task: Any, budget: int, seed: int, t_macs: float, t_params: float) -> dict[str, Any]:
    out = peer_optuna.search(task, TRIALS, seed, t_macs / budget, t_params * 0.1)
    return {"trials": out["trials"], "search_s": out["wall_s"]}


#: the search's students the benchmark trains: one per recommendation rule of the product
RULES = {"front: knee": "knee", "front: within 1": "within:1", "front: within 2": "within:2",
         "front: most accurate": "best"}


def recommended(front: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    """The front student the product's rule picks (applied to the cached front)."""
    import pandas as pd

    from nas_student.results.recommend import recommend

    trial = recommend(pd.DataFrame(front), ["accuracy", "macs", "params"], rule)
    return next(r for r in front if r["trial"] == trial)


# ------------------------------------------------------------------ training

def full_train(task: Any, soft: torch.Tensor, spec: dict[str, Any], seed: int, variant: str) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = make(spec, task.io)
    recipe, x, y, teacher_logits = FULL, task.train.x, task.train.y, soft
    if variant == "CE only":
        teacher_logits = None
    elif variant == "KD + features":
        recipe = FULL.model_copy(update={"features": FeatureKD(weight=1.0)})
    elif variant in ("KD, 10 % labels", "CE, 10 % labels"):
        recipe = FULL.model_copy(update={"labelled_fraction": 0.1})
        teacher_logits = soft if variant.startswith("KD") else None
    elif variant == "data-free KD":  # as the product's data-free mode: synthetic inputs, teacher's labels
        x, teacher_logits = datafree_inputs(task, seed)
        y = teacher_logits.argmax(-1)
    t0 = time.perf_counter()
    train(model, x, y, recipe, teacher_logits=teacher_logits, teacher=task.teacher, seed=seed)
    return {"accuracy": evaluate(model, task.test.x, task.test.y)["accuracy"], "train_s": time.perf_counter() - t0}


_DATAFREE: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def datafree_inputs(task: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from nas_student.distill.datafree import DataFreeSettings, synthesize

    if seed not in _DATAFREE:
        x = synthesize(task.teacher, task.io, DataFreeSettings().samples, DataFreeSettings(enabled=True), seed=seed)
        _DATAFREE[seed] = (x, predict(task.teacher, x))
    return _DATAFREE[seed]


# ------------------------------------------------------------------ the plan

def candidates(cache: Cache, task: Any, seeds: range, t_macs: float, t_params: float, run: bool | str,
               root: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(budget, method, seed) -> student spec; runs (or reads) the searches."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for bname, b in BUDGETS.items():
        max_macs, max_params = t_macs / b, t_params * 0.1
        shrunk = largest_within(shrunk_teacher, task.io, max_macs, max_params, top=100)
        paper = largest_within(lambda c: {"kind": "paper", "channels": c}, task.io, max_macs, max_params, top=200)
        for s in seeds:
            def get(key: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
                if not run and key not in cache._read():
                    return None
                return cache.get(key, fn)
            ours = get(f"search/tpe/{bname}/s{s}", lambda: our_search(b, s, "tpe", root)) if run != "peer" else None
            rnd = get(f"search/random/{bname}/s{s}", lambda: our_search(b, s, "random", root)) if run != "peer" else None
            acc_only = (get(f"search/tpe-accuracy/{bname}/s{s}", lambda: our_search(b, s, "tpe", root, ("accuracy",)))
                        if run in ("acc", False) and ONLY in (None, bname) else None)
            by_depth = (get(f"search/tpe-accuracy-depth/{bname}/s{s}",
                            lambda: our_search(b, s, "tpe", root, ("accuracy",), by_depth=True))
                        if run in ("depth", False) and ONLY in (None, bname) else None)
            for arm, prefix in ((acc_only, "best"), (by_depth, "steps by depth")):
                if arm and arm["front"]:
                    best = max(arm["front"], key=lambda r: (r["accuracy"], -r["macs"]))
                    out[(bname, f"{prefix}: most accurate", s)] = {"kind": "arch", "arch": best["arch"]}
                    close = recommended(arm["front"], "within:1")
                    out[(bname, f"{prefix}: within 1", s)] = {"kind": "arch", "arch": close["arch"]}
            peer = get(f"search/peer/{bname}/s{s}", lambda: peer_search(task, b, s, t_macs, t_params)) if run != "ours" else None
            out[(bname, "shrunk teacher", s)] = shrunk
            out[(bname, "paper CNN", s)] = paper
            if ours and ours["front"]:
                for method, rule in RULES.items():
                    out[(bname, method, s)] = {"kind": "arch", "arch": recommended(ours["front"], rule)["arch"]}
            if rnd and rnd["front"]:
                best = max(rnd["front"], key=lambda r: (r["accuracy"], -r["macs"]))
                out[(bname, "random search", s)] = {"kind": "arch", "arch": best["arch"]}
            if peer and any(r["feasible"] for r in peer["trials"]):
                feas = [r for r in peer["trials"] if r["feasible"]]
                best = max(feas, key=lambda r: (r["accuracy"], -r["macs"]))
                out[(bname, "plain Optuna script", s)] = {"kind": "peer", "params": best["params"]}
    return out


VARIANTS = ["CE only", "KD + features", "KD, 10 % labels", "CE, 10 % labels", "data-free KD"]


def jobs(cands: dict[tuple[str, str, int], dict[str, Any]]) -> list[tuple[str, dict[str, Any], int, str]]:
    """(cache key, spec, seed, variant) of every full training, deduplicated."""
    seen: dict[str, tuple[str, dict[str, Any], int, str]] = {}
    for (bname, method, s), spec in cands.items():
        variants = ["KD"] + (VARIANTS if (bname, method) == ("1/30", "front: most accurate") else [])
        for v in variants:
            key = f"train/{key_of(spec)}/s{s}/{v}"
            seen.setdefault(key, (key, spec, s, v))
    return list(seen.values())


def ms(xs: list[float], scale: float = 100, digits: int = 2) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{scale * xs[0]:.{digits}f}"
    return f"{scale * statistics.fmean(xs):.{digits}f} ± {scale * statistics.stdev(xs):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--part", default="all",
                    help="searches (or searches-ours, searches-peer, searches-acc, searches-depth) | train-A | train-B | latency | report | all")
    ap.add_argument("--out", type=Path, default=Path("results/records/proof_mnist1d.md"))
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--only-budget", default=None, help="run the searches of this budget only (e.g. 1/10)")
    ap.add_argument("--smoke", action="store_true", help="a tiny run (2 trials, 20 steps) to check the script")
    args = ap.parse_args()
    torch.set_num_threads(1)
    global TRIALS, FULL, ONLY
    ONLY = args.only_budget
    if args.smoke:
        TRIALS, FULL = 2, FULL.model_copy(update={"steps": 20})
        peer_optuna.STEPS = 5
    cache, seeds = Cache(args.cache), range(args.seeds)
    task = load_task("mnist1d", seed=0)
    soft = predict(task.teacher, task.train.x)
    t_cost = profile(task.teacher, task.io.example_input())
    t_acc = evaluate(task.teacher, task.test.x, task.test.y)["accuracy"]
    root = Path(tempfile.gettempdir()) / "nas-bench-proof"
    run = {"searches": True, "all": True, "searches-ours": "ours", "searches-peer": "peer",
           "searches-acc": "acc", "searches-depth": "depth"}.get(args.part, False)
    cands = candidates(cache, task, seeds, t_cost.macs, t_cost.params, run=run, root=root)
    if args.part in ("train-A", "train-B", "all"):
        todo = jobs(cands)
        if args.part != "all":
            todo = todo[0::2] if args.part == "train-A" else todo[1::2]
        for key, spec, s, v in todo:
            cache.get(key, lambda: full_train(task, soft, spec, s, v))
    if args.part in ("latency", "all"):
        specs = {key_of(spec): spec for spec in cands.values()}
        cache.get("latency", lambda: latency(task, specs))
    if args.part in ("report", "all"):
        from proof_report import report

        text = report(cache._read(), cands, task, t_cost, t_acc, seeds, key_of, label, costs)
        args.out.write_text(text)
        print(text)


def latency(task: Any, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """ms per forward at batch 1 and 64, one thread, every student and the teacher, in one pass."""
    out = {}
    for name, model in [("teacher", task.teacher), *((k, make(s, task.io)) for k, s in specs.items())]:
        model.eval()
        out[name] = {str(b): measure_latency(model, task.io.example_input(b), threads=1, warmup=20, repeats=200)
                     for b in (1, 64)}
    return {"ms": out}


if __name__ == "__main__":
    main()
