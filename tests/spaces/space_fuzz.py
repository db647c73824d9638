"""Generate search-space files for fuzzing the loader: valid ones built from random
combinations of the space language, invalid ones by mutating valid ones.

    from space_fuzz import generate
    cases = generate(1000, seed=0)     # deterministic for a given (n, seed)

Each :class:`Case` holds the file's bytes, whether it is meant to load (``valid``) and, for an
invalid one, the ``kind`` of mutation. Valid spaces are for the ``mlp`` and ``cnn`` families
and keep models small (a few thousand parameters on 8x8 inputs) so that building them is cheap.
Used by ``tests/spaces/test_fuzz_spaces.py`` and ``bench/reliability_record.py``.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass
from typing import Any, Callable

import yaml

ACTS = ["relu", "relu6", "gelu", "silu", "hardswish", "tanh"]


@dataclass(frozen=True)
class Case:
    index: int
    data: bytes
    valid: bool
    kind: str  # "mlp"/"cnn" for valid ones, the mutation for invalid ones
    family: str

    @property
    def name(self) -> str:
        return f"{self.index:04d}-{'valid' if self.valid else 'invalid'}-{self.kind}.yaml"


# -- valid spaces ------------------------------------------------------------------------------

def _int_param(rng: random.Random, lo: int, hi: int, d: int = 1, *, log_ok: bool = True) -> Any:
    """An int parameter over a sub-range of ``lo, lo+d, .., hi``: fixed, choice, range, log."""
    values = list(range(lo, hi + 1, d))
    kind = rng.choice(["fixed", "choice", "range", "range", "log"])
    if kind == "fixed" or len(values) == 1:
        return rng.choice(values)
    if kind == "choice":
        return {"type": "choice", "values": sorted(rng.sample(values, rng.randint(1, min(4, len(values)))))}
    i, j = sorted(rng.sample(range(len(values)), 2))
    low, high = values[i], values[j]
    if kind == "log" and log_ok and d == 1 and low >= 1:
        return {"type": "int", "low": low, "high": high, "log": True}
    k = rng.choice([s for s in (1, 2, 3, 4) if (j - i) % s == 0])
    p: dict[str, Any] = {"type": "int", "low": low, "high": high}
    if k * d != 1 or rng.random() < 0.3:
        p["step"] = k * d
    return p


def _float_param(rng: random.Random, lo: float, hi: float) -> Any:
    kind = rng.choice(["fixed", "choice", "linear", "log", "step"])
    if kind == "fixed":
        return round(rng.uniform(lo, hi), 2)
    if kind == "choice":
        return {"type": "choice", "values": sorted({round(rng.uniform(lo, hi), 2) for _ in range(3)})}
    if kind == "log":
        return {"type": "float", "low": rng.choice([1e-3, 0.01, 0.05]), "high": hi, "log": True}
    if kind == "step":
        return {"type": "float", "low": lo, "high": hi, "step": rng.choice([0.1, 0.25, hi - lo])}
    return {"type": "float", "low": lo, "high": round(rng.uniform(lo, hi), 3)}


def _cat_param(rng: random.Random, values: list[Any]) -> Any:
    if rng.random() < 0.3:
        return rng.choice(values)
    return {"type": "choice", "values": rng.sample(values, rng.randint(1, len(values)))}


def _count(rng: random.Random, lo: int, hi: int) -> Any:
    if rng.random() < 0.35:
        return rng.randint(lo, hi)
    low = rng.randint(lo, hi)
    high = rng.randint(low, hi)
    return {"type": "int", "low": low, "high": high}


def _low(p: Any) -> Any:
    """The smallest value a parameter spec can take (for rules that keep the space non-empty)."""
    if isinstance(p, dict):
        return min(p["values"]) if p["type"] == "choice" else p["low"]
    return p


def _some(rng: random.Random, pool: list[str], k: int) -> list[str]:
    return rng.sample(pool, min(len(pool), rng.randint(0, k)))


def valid_mlp(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {}
    d = rng.choice([1, 4, 8])
    width = _int_param(rng, d if d > 1 else 4, 64, d)
    layer: dict[str, Any] = {"width": width}
    if rng.random() < 0.6:
        layer["dropout"] = _float_param(rng, 0.0, 0.5)
    wlow = _low(width)
    layer_rules = [f"width >= {wlow}", "index < 8", f"index == 0 or width <= {wlow + rng.randint(0, 32)}",
                   f"min(width, 64) >= {min(wlow, 64)}", f"abs(width - {wlow}) >= 0", f"not (width < {wlow})"]
    if "dropout" in layer:
        layer_rules.append("dropout < 1")
    top_names = ["layers"]
    if rng.random() < 0.7:
        params["activation"] = _cat_param(rng, ACTS)
        top_names.append("activation")
        layer_rules.append("activation != 'tanh' or width >= 1")
    if rng.random() < 0.6:
        params["norm"] = _cat_param(rng, ["none", "batch", "layer"])
        top_names.append("norm")
    count = _count(rng, 0, 3)
    repeat: dict[str, Any] = {"type": "repeat", "count": count, "params": layer}
    rules = _some(rng, layer_rules, 2)
    if rules:
        repeat["rules"] = rules
    params["layers"] = repeat
    top_rules = [f"layers <= {rng.randint(_low(count), 3)}", "layers >= 0", "max(layers, 1) <= 4"]
    if "activation" in params:
        top_rules.append(f"activation in {ACTS!r} and layers < 9")
    if "norm" in params:
        top_rules.append("norm != 'batch' or layers >= 0")
    items = list(params.items())
    rng.shuffle(items)
    return _space("mlp", dict(items), _some(rng, top_rules, 2), rng)


def valid_cnn(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {}
    grouped = rng.random() < 0.5
    by_rule = grouped and rng.random() < 0.5  # divisibility by rules instead of by construction
    d = 2 if by_rule else (4 if grouped else rng.choice([1, 2, 4]))
    params["stem_width"] = _int_param(rng, d if d > 1 else 4, 32, d, log_ok=not grouped)
    if grouped:  # with divisibility by rules, 1 is always allowed so that the space is not empty
        params["groups"] = ({"type": "choice", "values": [1, *rng.sample([2, 4], rng.randint(1, 2))]}
                            if by_rule else _cat_param(rng, [1, 2, 4]))
    stage: dict[str, Any] = {
        "depth": _int_param(rng, 1, 2),
        "width": _int_param(rng, d if d > 1 else 4, 32, d, log_ok=not grouped),
    }
    if rng.random() < 0.7:
        k = rng.random()
        stage["kernel"] = (rng.choice([1, 3, 5]) if k < 0.3 else
                           {"type": "choice", "values": rng.sample([1, 3, 5], rng.randint(1, 3))} if k < 0.7
                           else {"type": "int", "low": 1, "high": rng.choice([3, 5]), "step": 2})
    if rng.random() < 0.7:
        stage["downsample"] = _cat_param(rng, ["none", "stride", "maxpool", "avgpool"])
    if rng.random() < 0.4:
        params["stem_kernel"] = rng.choice([1, 3, {"type": "choice", "values": [1, 3, 5]}])
    for key, values in (("norm", ["batch", "group", "none"]), ("activation", ACTS),
                        ("residual", [True, False])):
        if rng.random() < 0.6:
            params[key] = _cat_param(rng, values)
    if rng.random() < 0.4:
        params["head_dropout"] = _float_param(rng, 0.0, 0.5)
    count = _count(rng, 1, 3)
    repeat: dict[str, Any] = {"type": "repeat", "count": count, "params": stage}
    layer_rules = ["depth <= 2", "index < 4", f"width >= {_low(stage['width'])}",
                   f"index == 0 or width >= {_low(stage['width'])}"]
    rules = _some(rng, layer_rules, 1)
    if by_rule:
        rules.append("width % groups == 0")
    if rules:
        repeat["rules"] = rules
    params["stages"] = repeat
    top_rules = ["stages >= 1", f"stages <= {rng.randint(_low(count), 3)}",
                 f"stem_width >= {_low(params['stem_width'])} or stages <= 3"]
    chosen = _some(rng, top_rules, 2)
    if by_rule:
        chosen.append("stem_width % groups == 0")
    items = list(params.items())
    rng.shuffle(items)
    return _space("cnn", dict(items), chosen, rng)


def _space(family: str, params: dict[str, Any], rules: list[str], rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": f"fuzz-{family}-{rng.randint(0, 10**6)}"}
    if rng.random() < 0.3:
        spec["description"] = rng.choice(["a fuzzed space", "Größen: klein — ünïcödé ✓", "x: y"])
    spec["family"] = family
    spec["params"] = params
    if rules or rng.random() < 0.2:
        spec["rules"] = rules
    return spec


def dump(spec: Any, rng: random.Random | None = None) -> str:
    """YAML text for ``spec``, in a random but equivalent style (flow, block, comments)."""
    style = rng.choice([None, None, False, True]) if rng else None
    text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=style, allow_unicode=True, width=200)
    if rng and rng.random() < 0.3:
        text = "# a fuzzed search space\n" + "\n".join(
            line + ("   # note" if line.strip() and rng.random() < 0.2 and "'" not in line and '"' not in line
                    else "") for line in text.splitlines()) + "\n"
    return text


# -- invalid spaces: mutations of valid ones ---------------------------------------------------

def _leaves(spec: dict[str, Any], types: tuple[str, ...] = ("int", "float", "choice")) -> list[dict[str, Any]]:
    out = []
    for p in spec["params"].values():
        if isinstance(p, dict) and p.get("type") in types:
            out.append(p)
        if isinstance(p, dict) and p.get("type") == "repeat":
            if isinstance(p["count"], dict) and p["count"].get("type") in types:
                out.append(p["count"])
            out += [q for q in p["params"].values() if isinstance(q, dict) and q.get("type") in types]
    return out


def _repeat(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = "layers" if spec["family"] == "mlp" else "stages"
    return name, spec["params"][name]


Mutation = Callable[[random.Random, dict[str, Any], str], "str | bytes"]


def _m_wrong_type(rng, spec, text):
    s = copy.deepcopy(spec)
    opts = [
        lambda: s.__setitem__("name", 123),
        lambda: s.__setitem__("family", [s["family"]]),
        lambda: s.__setitem__("params", "layers"),
        lambda: s.__setitem__("rules", "1 > 0"),
        lambda: s.__setitem__("description", 42),
        lambda: _repeat(s)[1].__setitem__("params", ["width"]),
        lambda: _repeat(s)[1].__setitem__("rules", [1, 2]),
    ]
    ints = [p for p in _leaves(s, ("int",))]
    if ints:
        p = rng.choice(ints)
        opts += [lambda: p.__setitem__("low", str(p["low"])), lambda: p.__setitem__("high", p["high"] + 0.5),
                 lambda: p.__setitem__("step", "2"), lambda: p.__setitem__("log", "yes"),
                 lambda: p.__setitem__("low", True)]
    choices = _leaves(s, ("choice",))
    if choices:
        c = rng.choice(choices)
        opts += [lambda: c.__setitem__("values", "relu"), lambda: c.__setitem__("values", {"a": 1}),
                 lambda: c.__setitem__("values", [[1, 2]])]
    rng.choice(opts)()
    return dump(s, rng)


def _m_low_gt_high(rng, spec, text):
    s = copy.deepcopy(spec)
    ranges = [p for p in _leaves(s, ("int", "float"))]
    if ranges:
        p = rng.choice(ranges)
        p["low"], p["high"] = p["high"] + 1, p["low"]
        p.pop("step", None)
    else:
        _, r = _repeat(s)
        r["params"]["width"] = {"type": "int", "low": 64, "high": 8}
    return dump(s, rng)


def _m_unknown_key(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    where = rng.choice(["top", "leaf", "repeat", "param", "layer_param"])
    if where == "top":
        s[rng.choice(["extra", "param", "Params", "rule"])] = 1
    elif where == "leaf" and _leaves(s):
        rng.choice(_leaves(s))[rng.choice(["stepp", "Low", "default", "values2"])] = 1
    elif where == "repeat":
        r[rng.choice(["counts", "rule", "layers"])] = 1
    elif where == "param":
        s["params"][rng.choice(["widthh", "depth", "lr", "optimizer"])] = {"type": "choice", "values": [1, 2]}
    else:
        r["params"][rng.choice(["widht", "stride", "bias"])] = 3
    return dump(s, rng)


def _m_broken_yaml(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    opts = [
        lambda: flow.replace("]", "", 1) if "]" in flow else flow + "x: [1, 2\n",
        lambda: flow.replace("}", "", 1) if "}" in flow else flow + "x: {a: 1\n",
        lambda: flow.replace("family:", "family: 'mlp", 1),
        lambda: flow.replace("\nparams:\n", "\nparams:\n\t", 1),
        lambda: flow.replace("family:", "  family:", 1),
        lambda: flow + "  - stray item\n",
        lambda: flow.replace("name:", "name: a: b\n  c:", 1),
        lambda: flow + "key: [1, 2]]\n",
        lambda: flow + "@reserved: 1\n",
        lambda: flow + "k: `backtick`\n",
        lambda: flow + 'k: "bad escape \\q"\n',
    ]
    return rng.choice(opts)()


def _m_duplicate_key(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    opts = [lambda: flow + f"family: {spec['family']}\n",
            lambda: flow + f"name: {spec['name']}\n",
            lambda: flow.replace("{type: ", "{type: int, type: ", 1) if "{type: " in flow else flow + "name: x\n",
            lambda: flow.replace("params:\n", "params:\n  dup: 1\n  dup: 2\n", 1)]
    return rng.choice(opts)()


def _m_alias(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    return rng.choice([
        flow.replace("family: ", "family: &fam ", 1) + "extra: *fam\n",
        flow.replace("name: ", "name: &n ", 1) + "description: *n\n",
        "base: &b {type: int, low: 1, high: 2}\n" + flow.replace("params:\n", "params:\n  w: *b\n", 1),
        flow + "bomb: &a [1, 1]\nbomb2: &b2 [*a, *a]\n",
    ])


def _m_python_tag(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    tag = rng.choice([
        "!!python/object/apply:os.system ['touch /tmp/fuzz-pwned']",
        "!!python/name:os.system",
        "!!python/object:collections.OrderedDict {}",
        "!!python/tuple [1, 2]",
        "!!python/str abc",
        "!!python/module:os",
    ])
    where = rng.choice(["param", "top", "family"])
    if where == "family":
        return re.sub(r"^family: .*$", f"family: {tag}", flow, count=1, flags=re.M)
    if where == "top":
        return flow + f"extra: {tag}\n"
    return flow.replace("params:\n", f"params:\n  hack: {tag}\n", 1)


BAD_RULES = ["width >", "layers.__class__", "__import__('os').system('x')", "open('/etc/passwd')",
             "lambda: 1", "[1, 2][0] > 0", "width if 1 else 2", "f'{width}' == 'a'", "width = 3",
             "1; 2", "(a := 3)", "", "   ", "exec('1')", "getattr(width, 'x')", "{1: 2}",
             "width is None", "min", "abs > 1", "max(width, key=abs) > 1", "*width", "width @ 2",
             "x[0]", "'%s' % width", "not", "((((" , "1 < 2 < ", "yield 1", "await x"]


def _m_bad_rule(rng, spec, text):
    s = copy.deepcopy(spec)
    rule: Any = rng.choice(BAD_RULES + [5, 1.5, True, None, ["a"], {"a": 1}])
    if rng.random() < 0.5:
        s["rules"] = list(s.get("rules", [])) + [rule]
    else:
        _, r = _repeat(s)
        r["rules"] = list(r.get("rules", [])) + [rule]
    return dump(s, rng)


def _m_unknown_name(rng, spec, text):
    s = copy.deepcopy(spec)
    layer_names = list(_repeat(s)[1]["params"])
    if rng.random() < 0.5:  # top-level rules cannot see layer parameters, nor `index`
        bad = rng.choice(["depthh", "index", "Layers", "size", *layer_names])
        s["rules"] = list(s.get("rules", [])) + [f"{bad} > 0"]
    else:
        _, r = _repeat(s)
        r["rules"] = list(r.get("rules", [])) + [f"{rng.choice(['widht', 'i', 'layer', 'count'])} >= 0"]
    return dump(s, rng)


def _m_empty_choice(rng, spec, text):
    s = copy.deepcopy(spec)
    choices = _leaves(s, ("choice",))
    if choices:
        rng.choice(choices)["values"] = []
    else:
        s["params"]["activation" if s["family"] == "mlp" else "norm"] = {"type": "choice", "values": []}
    return dump(s, rng)


def _m_huge(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    big = rng.choice([10**30, 2**63, 2**64 + 1, 10**400])
    opts = [
        lambda: r["params"].__setitem__("width", {"type": "int", "low": 1, "high": big}),
        lambda: r["params"].__setitem__("width", {"type": "int", "low": -big, "high": 8}),
        lambda: r["params"].__setitem__("width", {"type": "int", "low": 8, "high": 16, "step": big}),
        lambda: r.__setitem__("count", big),
        lambda: r.__setitem__("count", {"type": "int", "low": 0, "high": big}),
        lambda: r.__setitem__("count", 10**6),
        lambda: r["params"].__setitem__("width", big),
        lambda: r["params"].__setitem__("width", {"type": "choice", "values": [8, big]}),
        lambda: r["params"].__setitem__("width", {"type": "int", "low": 1, "high": 10**12}),
    ]
    rng.choice(opts)()
    text = dump(s, rng)
    if rng.random() < 0.3:  # floats beyond double range, written out
        key = "dropout" if s["family"] == "mlp" else "head_dropout"
        text = text.replace("params:\n", f"params:\n  {key}: {{type: float, low: 0.0, high: 1.0e400}}\n", 1)
    return text


def _m_deep_nesting(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    n = rng.choice([70, 200, 1000, 5000, 50000])
    if rng.random() < 0.5:
        value = "[" * n + "]" * n
    else:
        value = "{a: " * n + "1" + "}" * n
    if rng.random() < 0.5:
        block = "".join("  " * i + "a:\n" for i in range(min(n, 300))) + "  " * min(n, 300) + "1\n"
        return flow + "deep:\n" + "".join("  " + line + "\n" for line in block.splitlines())
    return flow.replace("params:\n", f"params:\n  deep: {value}\n", 1)


def _m_unicode(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    opts: list[Callable[[], str | bytes]] = [
        lambda: dump(s).encode("utf-8").replace(b"name: ", b"name: \xff\xfe", 1),
        lambda: dump(s).encode("utf-8") + b"description: caf\xe9\n",
        lambda: dump(s).encode("latin-1", "replace").replace(b"family", b"famil\xe9", 1),
        lambda: dump(s) + "extra: \x00\n",
        lambda: dump(s) + "extra: \x07bell\n",
        lambda: dump(s) + "x: \x1b[31m\n",
        lambda: (r["params"].__setitem__("wïdth", 8), dump(s))[1],
        lambda: (s.__setitem__("family", s["family"] + "\u200b"), dump(s))[1],
        lambda: (s.__setitem__("name", "space-✓"), dump(s))[1],
        lambda: (s["params"].__setitem__("\u202eevil", 1), dump(s))[1],
        lambda: (s["params"].__setitem__("new\nline", 1), dump(s))[1],
        lambda: (s["params"].__setitem__("activation", "r\u0435lu"), dump(s))[1],  # Cyrillic e
        lambda: (s.__setitem__("family", "ｍｌｐ"), dump(s))[1],  # full-width letters
        lambda: "\ufeff" + dump(s) + "extra: 1\n",
    ]
    out = rng.choice(opts)()
    return out


def _m_empty(rng, spec, text):
    return rng.choice(["", "   \n\n", "# only a comment\n", "---\n", "...\n", "\n---\n...\n", "~\n", "null\n"])


def _m_non_mapping(rng, spec, text):
    return rng.choice(["- a\n- b\n", "42\n", "just a string\n", "[1, 2]\n", "true\n", "3.5\n",
                       yaml.safe_dump([spec], sort_keys=False), "'name: x'\n", "!!set {a, b}\n"])


def _m_missing_key(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    opts = [lambda: s.pop("name"), lambda: s.pop("family"), lambda: s.pop("params"),
            lambda: s.__setitem__("params", {}), lambda: r.pop("params"), lambda: r.pop("count"),
            lambda: r.__setitem__("params", {}), lambda: s.__setitem__("name", "")]
    if _leaves(s, ("int", "float")):
        leaf = rng.choice(_leaves(s, ("int", "float")))
        opts += [lambda: leaf.pop("low"), lambda: leaf.pop("high")]
    rng.choice(opts)()
    return dump(s, rng)


def _m_bad_family(rng, spec, text):
    s = copy.deepcopy(spec)
    other = {"mlp": "cnn", "cnn": "mlp"}[s["family"]]
    s["family"] = rng.choice(["mpl", "cnnn", "CNN", "", "resnet", "transformer", other, "mlp cnn"])
    return dump(s, rng)


def _m_bad_type_name(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    leaves = _leaves(s)
    opts = [lambda: r.__setitem__("type", "repeats"),
            lambda: r["params"].__setitem__("inner", {"type": "repeat", "count": 1, "params": {"a": 1}}),
            lambda: s["params"].__setitem__(name, {"type": "int", "low": 1, "high": 2, "params": {}}),
            lambda: s["params"].__setitem__("activation", {"values": ["relu"]}),
            lambda: s["params"].__setitem__("activation", {"type": None, "values": ["relu"]}),
            lambda: s["params"].__setitem__("activation", {"type": ["choice"], "values": ["relu"]})]
    if leaves:
        leaf = rng.choice(leaves)
        opts += [lambda: leaf.__setitem__("type", rng.choice(["integer", "choise", "Int", "categorical",
                                                              "bool", "str"]))]
    rng.choice(opts)()
    return dump(s, rng)


def _m_bad_range_options(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    target = rng.choice([
        {"type": "int", "low": 0, "high": 8, "log": True},
        {"type": "int", "low": 2, "high": 8, "step": 2, "log": True},
        {"type": "int", "low": 1, "high": 8, "step": 3},
        {"type": "int", "low": 1, "high": 8, "step": 0},
        {"type": "int", "low": 1, "high": 8, "step": -1},
        {"type": "float", "low": 0.0, "high": 0.5, "log": True},
        {"type": "float", "low": 0.1, "high": 0.5, "log": True, "step": 0.1},
        {"type": "float", "low": 0.0, "high": 0.5, "step": 0.0},
        {"type": "float", "low": 0.0, "high": 1.0e308 * 10, "step": 1.0e-300},
        {"type": "float", "low": -1.0e308, "high": 1.0e308},
        {"type": "float", "low": 0.0, "high": 1.0e300, "step": 1.0e-300},
        {"type": "choice", "values": [1, 1]},
    ])
    key = "dropout" if target["type"] == "float" and s["family"] == "mlp" else "width"
    if target["type"] == "float" and s["family"] == "cnn":
        s["params"]["head_dropout"] = target
    else:
        r["params"][key] = target
    text = dump(s, rng)
    return text


def _m_empty_space(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    opts = [lambda: s.__setitem__("rules", ["1 > 2"]),
            lambda: s.__setitem__("rules", [f"{name} < 0"]),
            lambda: s.__setitem__("rules", [f"{name} > 3", f"{name} < 2"]),
            lambda: s.__setitem__("rules", ["9**9**9 > 0"]),
            lambda: s.__setitem__("rules", ["'a' * 10**12 == 'b'"]),
            lambda: s.__setitem__("rules", ["1 / 0 > 0"]),
            lambda: (r.__setitem__("count", {"type": "int", "low": 1, "high": 3}),
                     r.__setitem__("rules", ["width < 0"]))]
    rng.choice(opts)()
    return dump(s, rng)


def _m_null_value(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    leaves = _leaves(s, ("int", "float"))
    opts = [lambda: r["params"].__setitem__("width", None),
            lambda: s["params"].__setitem__("activation", None),
            lambda: s.__setitem__("params", None),
            lambda: r.__setitem__("count", None)]
    if leaves:
        leaf = rng.choice(leaves)
        opts.append(lambda: leaf.__setitem__("high", None))
    rng.choice(opts)()
    text = dump(s, rng)
    if rng.random() < 0.3:
        key = "dropout" if s["family"] == "mlp" else "head_dropout"
        text = text.replace("params:\n", f"params:\n  {key}: {rng.choice(['.nan', '.inf', '-.inf'])}\n", 1)
    return text


def _m_family_invalid(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    r["count"] = 1  # so that a bad layer value is always sampled
    s.pop("rules", None)
    r.pop("rules", None)
    if s["family"] == "mlp":
        opts = [lambda: r["params"].__setitem__("width", 0),
                lambda: r["params"].__setitem__("width", 100000),
                lambda: r["params"].__setitem__("width", 8.0),
                lambda: r["params"].__setitem__("dropout", 1.5),
                lambda: s["params"].__setitem__("activation", {"type": "choice", "values": ["swish"]}),
                lambda: s["params"].__setitem__("norm", "group"),
                lambda: r.__setitem__("count", 100)]
    else:
        opts = [lambda: r["params"].__setitem__("kernel", 4),
                lambda: r["params"].__setitem__("width", 0),
                lambda: s["params"].__setitem__("norm", "layer"),
                lambda: r["params"].__setitem__("downsample", "strided"),
                lambda: r.__setitem__("count", 0),
                lambda: s["params"].__setitem__("residual", "yes"),
                lambda: (s["params"].__setitem__("groups", 3), s["params"].__setitem__("stem_width", 8)),
                lambda: s["params"].pop("stem_width")]
    rng.choice(opts)()
    return dump(s, rng)


def _m_multi_doc(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    return rng.choice([flow + "---\nname: second\n", "---\n" + flow + "---\n" + flow])


def _m_complex_key(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    return rng.choice([flow + "? [a, b]\n: 1\n", flow + "? {a: 1}\n: 1\n",
                       flow.replace("params:\n", "params:\n  [w, x]: 1\n", 1)])


def _m_too_large(rng, spec, text):
    flow = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=200)
    return flow + "# " + "x" * 1_000_100 + "\n"


def _m_bad_count(rng, spec, text):
    s = copy.deepcopy(spec)
    name, r = _repeat(s)
    r["count"] = rng.choice([-1, 2.5, "two", True, [1, 2], {"type": "float", "low": 0, "high": 2},
                             {"type": "choice", "values": [1, 2]}, {"type": "int", "low": -2, "high": 2},
                             {"type": "int", "low": 0, "high": 300}])
    return dump(s, rng)


def _m_rule_bomb(rng, spec, text):
    s = copy.deepcopy(spec)
    rule = rng.choice(["1+" * 600 + "1 > 0", "(" * 300 + "1" + ")" * 300 + " > 0", "not " * 200 + "True",
                       "-" * 500 + "1 < 0", "min(" * 100 + "1" + ")" * 100 + " > 0",
                       "x" * 2000 + " > 0"])
    s["rules"] = [rule]
    return dump(s, rng)


def _m_bad_name(rng, spec, text):
    s = copy.deepcopy(spec)
    s["name"] = rng.choice(["my space", "a/b", "../../etc", "x" * 0, "name\twith tab", "semi;colon"])
    return dump(s, rng)


MUTATIONS: dict[str, Mutation] = {
    name.removeprefix("_m_"): fn for name, fn in list(globals().items()) if name.startswith("_m_")
}


def generate(n: int = 1000, seed: int = 0, valid_share: float = 0.4) -> list[Case]:
    """``n`` cases, deterministic for (n, seed, valid_share): about ``valid_share`` valid, the
    rest mutations of valid ones, every mutation kind in turn."""
    rng = random.Random(seed)
    kinds = sorted(MUTATIONS)
    cases: list[Case] = []
    n_valid = round(n * valid_share)
    for i in range(n):
        family = rng.choice(["mlp", "cnn"])
        spec = (valid_mlp if family == "mlp" else valid_cnn)(rng)
        if i < n_valid:
            cases.append(Case(i, dump(spec, rng).encode("utf-8"), True, family, family))
            continue
        kind = kinds[(i - n_valid) % len(kinds)]
        out = MUTATIONS[kind](rng, spec, dump(spec))
        data = out if isinstance(out, bytes) else out.encode("utf-8", "surrogatepass")
        cases.append(Case(i, data, False, kind, family))
    return cases


def message_kind(msg: str, path: str) -> str:
    """A message without its file, line, key and values: the rule it states, for grouping."""
    rest = msg[len(path):]
    rest = re.sub(r"^:\d+: ", "", rest).removeprefix(": ")
    rest = re.sub(r"^[^\s:]*(?:'[^']*')?[^\s:]*: ", "", rest, count=1)  # the key
    rest = re.sub(r" \(got .*\)$", "", rest)
    rest = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", rest)
    rest = re.sub(r"(unknown name\(s\)) .*", r"\1 …; known: …", rest)
    rest = re.sub(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", "N", rest)
    return rest


# A small valid space that the error tests mutate (9 lines: appended text starts on line 10).
GOOD = """name: ok
family: mlp
params:
  activation: {type: choice, values: [relu, gelu]}
  layers:
    type: repeat
    count: {type: int, low: 1, high: 2}
    params:
      width: {type: int, low: 8, high: 32, step: 8}
"""
