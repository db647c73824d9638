"""The trust report on real searches, against full training of the students it picked.

    python bench/trust_real.py --seeds 3 [--space mnist1d-cnn] [--full-seeds 3]

For each search seed: the default search (`nas-student search`, TPE, its trust report on), then
every student the trust report trained is fully trained (the full recipe, 3000 steps, from
``--full-seeds`` init seeds, as `bench/proxy_fidelity.py` does: the same target) and scored on
the test split. Reports, per search, the tau the report printed (and its projected tau and
verdict) against the true tau: the proxy's accuracy against the mean full-training accuracy
of the same students. Complements `bench/trust_calibration.py` (virtual searches drawn
uniformly from a pool) with searches as TPE runs them. Every full run is cached (resumable).
Writes results/records/trust_real.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import optuna
import torch
from scipy import stats

from nas_student.config import RunConfig
from nas_student.search import run_search
from nas_student.search.context import SearchContext
from nas_student.search.trust import HIGH

sys.path.insert(0, str(Path(__file__).parent))
from proxy_fidelity import measure  # noqa: E402

_CTX: dict[str, SearchContext] = {}


def _full(job: tuple[str, str, int]) -> float:
    arch, h, k = job
    return measure(_CTX["ctx"], json.loads(arch), h, 3000, True, 100 + k)["test_accuracy"]


def full_accuracies(ctx: SearchContext, todo: list[tuple[str, str, int]], workers: int) -> list[float]:
    _CTX["ctx"] = ctx
    if workers <= 1:
        return [_full(j) for j in todo]
    with mp.get_context("fork").Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return pool.map(_full, todo, chunksize=1)


def one(seed: int, space: str | None, full_seeds: int, cache: Path, workers: int) -> dict:
    base = RunConfig() if space is None else RunConfig(space=space)
    cfg = base.model_copy(update={"results_dir": str(cache / "runs"), "search": base.search.model_copy(
        update={"seed": seed})})
    out = run_search(cfg)  # resumes (and re-uses trust.json) when run before
    rep = out.trust
    store = cache / f"full-s{seed}.json"
    done = json.loads(store.read_text()) if store.exists() else {}
    arch = dict(zip(out.trials["arch_hash"], out.trials["arch"]))
    todo = [(arch[s["arch_hash"]], s["arch_hash"], k) for s in rep.students for k in range(full_seeds)
            if f"{s['arch_hash']}:{k}" not in done]
    t0 = time.perf_counter()
    for (a, h, k), acc in zip(todo, full_accuracies(out.ctx, todo, workers)):
        done[f"{h}:{k}"] = acc
    store.write_text(json.dumps(done, indent=1))
    full = [statistics.mean(done[f"{s['arch_hash']}:{k}"] for k in range(full_seeds)) for s in rep.students]
    proxy = [s["proxy_accuracy"] for s in rep.students]
    fr = [i for i, s in enumerate(rep.students) if s["on_front"]]
    best = max(fr, key=lambda i: proxy[i])
    row = {"seed": seed, "n": len(full), "tau": rep.tau, "proj": rep.projected_tau,
           "verdict": rep.verdict.split(":")[0], "true": float(stats.kendalltau(proxy, full)[0]),
           "best_kept": full[best] >= max(full[i] for i in fr), "full_s": time.perf_counter() - t0,
           "full_range": (min(full), max(full))}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--space", default=None, help="default: the default search's space")
    ap.add_argument("--full-seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="processes for the full runs (one thread each)")
    ap.add_argument("--cache", default="/tmp/nas_student_bench/trust_real")
    ap.add_argument("--out", default="results/records/trust_real.md")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cache = Path(args.cache) / (args.space or "default")
    cache.mkdir(parents=True, exist_ok=True)
    rows = [one(s, args.space, args.full_seeds, cache, args.workers) for s in range(args.seeds)]
    agree = float(stats.kendalltau([min(r["tau"], r["proj"]) for r in rows], [r["true"] for r in rows])[0])
    lines = [
        "# The trust report on real searches, against full training",
        "",
        f"Command: `python bench/trust_real.py --seeds {args.seeds} --full-seeds {args.full_seeds}"
        f"{'' if args.space is None else ' --space ' + args.space}` (the default search"
        f"{'' if args.space is None else ' on ' + args.space}, TPE, search seeds 0-{args.seeds - 1}; each student the "
        f"trust report trained is then fully trained from {args.full_seeds} init seeds, 3000 steps, the full recipe, "
        "and scored on the test split). *True tau*: the proxy's accuracy against the mean full-training accuracy, "
        f"same students. A verdict is right when \"high\" comes with a true tau >= {HIGH}.",
        "",
        "| search seed | students | printed tau | projected tau | verdict | true tau | front's best kept | "
        "full-training accuracy range |",
        "|---:|---:|---:|---:|---|---:|---|---|",
        *(f"| {r['seed']} | {r['n']} | {r['tau']:.2f} | {r['proj']:.2f} | {r['verdict']} | {r['true']:.2f} | "
          f"{'yes' if r['best_kept'] else 'no'} | {r['full_range'][0]:.4f}-{r['full_range'][1]:.4f} |" for r in rows),
        "",
        f"Over {len(rows)} searches: \"high\" printed {sum(r['verdict'] == 'high' for r in rows)} times, right "
        f"{sum(r['verdict'] == 'high' and r['true'] >= HIGH for r in rows)}; the report's tau (the lower of printed "
        "and projected) against the true tau: "
        + (f"Kendall tau {agree:.2f} (few searches: read the rows)." if agree == agree else
           "no order to compare (the report's taus are tied)."),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
