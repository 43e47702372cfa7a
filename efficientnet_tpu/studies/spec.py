"""A study as data: load and check a spec YAML, and expand it into named trials.

A spec names a base training config (a configs/ recipe and/or inline
TrainConfig fields and model overrides), what varies (``axes``: a product of
lists; ``trials``: an explicit list; ``groups``: named sets of either, each
with its own constraint), optional ``derived`` fields computed by a safe
expression from a trial's values (``variables`` names values that only feed
expressions), an optional constraint, repeats, and profiles (smoke, cpu,
cifar, paper) that override the base. Every trial becomes an ordinary
TrainConfig whose model_dir is ``<study_dir>/<study>/<trial>/seed<repeat>``.
Nothing here builds a network: MACs, when a constraint needs them, come from
a function the caller passes (``measure.params_and_macs``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shlex
from typing import Any, Callable, Mapping, Sequence

import yaml

from efficientnet_tpu import shipped
from efficientnet_tpu.studies import expressions
from efficientnet_tpu.training import config as config_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDIES_DIR = shipped.studies_dir()  # configs/studies: the checkout's, or the installed package's
PROFILES = ("smoke", "cpu", "cifar", "paper")
OVERRIDE_PREFIX = "model_overrides."

_TOP_KEYS = ("name", "title", "seeds", "description", "base", "axes", "trials", "groups", "derived",
             "variables", "constraint", "repeats", "profiles", "report")
_SHAPE_KEYS = ("axes", "trials", "derived")  # what a group or a profile may restate
_PROFILE_KEYS = ("config", "notes", "groups", "repeats", "constraint", "variables") + _SHAPE_KEYS


class SpecError(ValueError):
    """A bad spec: every problem is one line of the message."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Trial:
    """One training run of a study (one repeat of one configuration)."""

    study: str
    trial: str  # the configuration's name, without the repeat
    name: str  # study/trial/seedN: unique, and the directory under study_dir
    group: str | None
    repeat: int
    axes: dict[str, Any]  # the values that vary, flat ("model_overrides.width_coefficient")
    config: config_lib.TrainConfig
    constraint: str | None = None  # the verdict, e.g. "macs_ratio 2.03 in [1.8, 2.2]"

    def command(self) -> str:
        """The ``train`` command that runs this trial on its own (any launcher can use it)."""
        return train_command(self.config)


@dataclasses.dataclass(frozen=True)
class Expansion:
    """The trials of one profile, and the configurations the constraint rejected (name, verdict)."""

    trials: list[Trial]
    rejected: list[tuple[str, str]]


def train_command(config: config_lib.TrainConfig) -> str:
    """``python -m efficientnet_tpu.train`` with every field that differs from the defaults."""
    defaults = config_lib.TrainConfig(model_dir="")
    parts = ["python", "-m", "efficientnet_tpu.train"]
    for name in config_lib.FIELDS:
        value = getattr(config, name)
        if name == "class_names" or value == getattr(defaults, name):
            continue
        if value is None:
            text = ""
        elif isinstance(value, dict):
            text = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        parts.append(f"--{name}={text}")
    return " ".join(shlex.quote(p) for p in parts)


# ------------------------------------------------------------------ loading

def list_studies(directory: str = STUDIES_DIR) -> list[tuple[str, str]]:
    """(name, title) of every spec shipped in ``directory``."""
    out = []
    for filename in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if filename.endswith((".yaml", ".yml")):
            with open(os.path.join(directory, filename), encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
            title = data.get("title", "") if isinstance(data, dict) else ""
            out.append((os.path.splitext(filename)[0], str(title)))
    return out


def spec_path(study: str) -> str:
    """A shipped study's file from its name, or the path given."""
    if study.endswith((".yaml", ".yml")) or os.sep in study or "/" in study:
        return study
    path = os.path.join(STUDIES_DIR, f"{study}.yaml")
    if not os.path.exists(path):
        names = ", ".join(name for name, _ in list_studies())
        raise SpecError([f"no study named {study!r}; shipped studies: {names} (or give a path to a .yaml file)"])
    return path


def _read_text(path: str) -> str:
    if "://" in path:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel  (gs:// specs need TF's file system)

        if not tf.io.gfile.exists(path):
            raise SpecError([f"spec file {path} does not exist"])
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    if not os.path.exists(path):
        raise SpecError([f"spec file {path} does not exist"])
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_spec(study: str) -> dict[str, Any]:
    """Reads and checks a spec (a shipped name or a path); SpecError lists every problem found."""
    path = spec_path(study)
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        raise SpecError([f"{path} is not valid YAML: {' '.join(str(e).split())}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{path} must hold a mapping (name, base, axes, profiles, ...), got "
                         f"{type(data).__name__}"])
    data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    data["_path"] = path
    problems = check_spec(data, path)
    if problems:
        raise SpecError(problems)
    return data


def _recipe_path(recipe: str, spec_file: str) -> str:
    """A recipe path as given, else relative to the spec's folder, else to the repository root."""
    for candidate in (recipe, os.path.join(os.path.dirname(spec_file), recipe), os.path.join(REPO_ROOT, recipe)):
        if os.path.exists(candidate):
            return candidate
    return recipe


def _split_layer(layer: Mapping[str, Any], where: str, skip: Sequence[str]) -> tuple[dict, dict, list[str]]:
    """Inline TrainConfig fields and model overrides of a base/profile/group mapping, plus problems."""
    fields, overrides, problems = {}, {}, []
    for key, value in layer.items():
        if key in skip:
            continue
        if key == "model_overrides":
            if not isinstance(value, dict):
                problems.append(f"{where}.model_overrides must be a mapping of ModelSpec field -> value")
            else:
                overrides.update(value)
        elif key.startswith(OVERRIDE_PREFIX):
            overrides[key[len(OVERRIDE_PREFIX):]] = value
        elif key in config_lib.FIELDS:
            fields[key] = value
        else:
            problems.append(f"{where}: unknown key {key!r}; use a TrainConfig field "
                            f"({', '.join(list(config_lib.FIELDS)[:6])}, ...), model_overrides"
                            f"{'' if not skip else ', ' + ', '.join(skip)}")
    return fields, overrides, problems


def check_spec(spec: Mapping[str, Any], source: str) -> list[str]:
    """Every structural problem of a spec, one line each (an empty list when it is sound)."""
    problems = [f"{source}: unknown top-level key {k!r}; valid keys: {', '.join(_TOP_KEYS)}"
                for k in spec if k not in _TOP_KEYS and k != "_path"]
    if not isinstance(spec.get("name"), str) or not spec["name"].replace("_", "").isalnum():
        problems.append(f"{source}: name must be letters, digits and underscores, got {spec.get('name')!r}")
    base = spec.get("base", {})
    if not isinstance(base, dict):
        problems.append(f"{source}: base must be a mapping (config: a recipe path, TrainConfig fields, "
                        "model_overrides)")
        base = {}
    problems += _split_layer(base, f"{source}: base", ("config",))[2]
    if not any(k in spec for k in ("axes", "trials", "groups")):
        problems.append(f"{source}: give axes (lists to combine), trials (an explicit list) or groups")
    problems += _check_shape(spec, f"{source}")
    groups = spec.get("groups", {})
    if not isinstance(groups, dict):
        problems.append(f"{source}: groups must map a group name to {{axes: ...}} or {{trials: [...]}}")
    else:
        for group, body in groups.items():
            if not isinstance(body, dict) or not any(k in body for k in ("axes", "trials")):
                problems.append(f"{source}: group {group!r} needs axes or trials")
                continue
            problems += _check_shape(body, f"{source}: group {group}")
            problems += _check_constraint(body.get("constraint"), f"{source}: group {group}")
            problems += _split_layer(body, f"{source}: group {group}", _SHAPE_KEYS + ("constraint",))[2]
    repeats = spec.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        problems.append(f"{source}: repeats must be a whole number >= 1, got {repeats!r}")
    problems += _check_constraint(spec.get("constraint"), source)
    profiles = spec.get("profiles", {})
    if not isinstance(profiles, dict):
        problems.append(f"{source}: profiles must map a profile name ({', '.join(PROFILES)}) to overrides")
        profiles = {}
    for name, body in profiles.items():
        where = f"{source}: profile {name}"
        if not isinstance(body, dict):
            problems.append(f"{where} must be a mapping of overrides")
            continue
        problems += _split_layer(body, where, _PROFILE_KEYS)[2]
        problems += _check_shape(body, where)
        problems += _check_constraint(body.get("constraint"), where)
        for group in body.get("groups", {}) or {}:
            if group not in groups:
                problems.append(f"{where}: group {group!r} is not one of the spec's groups ({', '.join(groups)})")
    if "report" in spec:
        try:
            from efficientnet_tpu.studies import report  # pylint: disable=import-outside-toplevel
        except ImportError:
            report = None
        if report is not None and hasattr(report, "validate_report_section"):
            try:
                report.validate_report_section(spec["report"], source)
            except ValueError as e:
                problems.append(" ".join(str(e).split()))
    if not problems:
        for profile in [None, *profiles]:
            try:
                expand(spec, profile, study_dir="<study_dir>", constraint_check=False)
            except SpecError as e:
                problems += e.problems
            except ValueError as e:
                problems.append(f"{source}: profile {profile or '(none)'}: {' '.join(str(e).split())}")
    return problems


def _check_shape(body: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    axes = body.get("axes", {})
    if not isinstance(axes, dict) or any(not isinstance(v, list) or not v for v in axes.values()):
        problems.append(f"{where}: axes must map a key to a non-empty list of values")
    trials = body.get("trials", [])
    if not isinstance(trials, list) or any(not isinstance(t, dict) for t in trials):
        problems.append(f"{where}: trials must be a list of mappings (name, fields, model_overrides)")
    derived = body.get("derived", {})
    if not isinstance(derived, dict):
        problems.append(f"{where}: derived must map a field to an expression string")
    else:
        for key, text in derived.items():
            try:
                expressions.parse(text, f"{where}: derived {key}")
            except ValueError as e:
                problems.append(str(e))
    return problems


def _check_constraint(constraint: Any, where: str) -> list[str]:
    if constraint is None:
        return []
    if not isinstance(constraint, dict) or len(constraint) != 1 or \
            next(iter(constraint)) not in ("macs_ratio", "expression"):
        return [f"{where}: constraint must be {{macs_ratio: [low, high]}} or {{expression: '...'}}"]
    if "macs_ratio" in constraint:
        bounds = constraint["macs_ratio"]
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
                and bounds[0] <= bounds[1]):
            return [f"{where}: constraint macs_ratio must be [low, high], got {bounds!r}"]
        return []
    try:
        expressions.parse(constraint["expression"], f"{where}: constraint")
    except ValueError as e:
        return [str(e)]
    return []


# ---------------------------------------------------------------- expansion

def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":")).replace('"', "").replace(" ", "")
    return str(value)


def _trial_name(group: str | None, values: Mapping[str, Any]) -> str:
    """Strings as they are (``b0_seend_cifar10``), ``width1.5`` in a one-axis group, ``alpha1.2_beta1.1`` otherwise."""
    parts = []
    for key, value in values.items():
        if isinstance(value, str):
            parts.append(value)
        elif group is not None and len(values) == 1:
            parts.append(f"{group}{_short(value)}")
        else:
            parts.append(f"{key.split('.')[-1]}{_short(value)}")
    name = "_".join(parts) if parts else (group or "base")
    return name.replace("/", "-")


def _units(body: Mapping[str, Any], group: str | None, where: str) -> list[tuple[str, dict[str, Any]]]:
    """(trial name, flat values) for a body's axes product and explicit trials."""
    out = []
    axes = body.get("axes") or {}
    if axes:
        keys = list(axes)
        for combination in itertools.product(*(axes[k] for k in keys)):
            values = dict(zip(keys, combination))
            out.append((_trial_name(group, values), values))
    for index, trial in enumerate(body.get("trials") or []):
        trial = dict(trial)
        name = trial.pop("name", None)
        flat = {}
        for key, value in trial.items():
            if key == "model_overrides" and isinstance(value, dict):
                flat.update({OVERRIDE_PREFIX + k: v for k, v in value.items()})
            else:
                flat[key] = value
        if name is None:
            name = _trial_name(group, flat)
        elif group is not None and not str(name).startswith(group):
            name = f"{group}_{name}"
        if not isinstance(name, str) or not name or "/" in name:
            raise SpecError([f"{where}: trial {index + 1} has a bad name {name!r} (no slashes)"])
        out.append((name, flat))
    return out


def effective(spec: Mapping[str, Any], profile: str | None) -> dict[str, Any]:
    """The spec with one profile's overrides applied (axes per key, groups per group, derived per field)."""
    profiles = spec.get("profiles") or {}
    if profile is not None and profile not in profiles:
        raise SpecError([f"study {spec.get('name')!r} has no profile {profile!r}; its profiles: "
                         f"{', '.join(profiles) or 'none'}"])
    body = profiles.get(profile, {}) if profile else {}
    out = dict(spec)
    out["base"] = dict(spec.get("base") or {})
    out["profile_layer"] = body
    for key in ("axes", "derived"):
        if key in body:
            out[key] = {**(spec.get(key) or {}), **body[key]}
    if "trials" in body:
        out["trials"] = body["trials"]
    for key in ("repeats", "constraint", "variables"):
        if key in body:
            out[key] = body[key]
    groups = {g: dict(b) for g, b in (spec.get("groups") or {}).items()}
    for group, changes in (body.get("groups") or {}).items():
        merged = dict(groups[group])
        for key, value in changes.items():
            merged[key] = {**(merged.get(key) or {}), **value} if key in ("axes", "derived") else value
        groups[group] = merged
    out["groups"] = groups
    return out


def _namespace(config: config_lib.TrainConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """What expressions may read: the config's numbers, its model overrides, the trial's own values."""
    space = {k: v for k, v in config.to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    space.update({k: v for k, v in (config.model_overrides or {}).items() if isinstance(v, (int, float))})
    space.update({k.split(".")[-1]: v for k, v in values.items() if isinstance(v, (int, float))})
    return space


def expand(spec: Mapping[str, Any], profile: str | None, *, study_dir: str, repeats: int | None = None,
           macs_fn: Callable[[config_lib.TrainConfig], tuple[int, int]] | None = None,
           constraint_check: bool = True) -> Expansion:
    """The trials of ``spec`` under ``profile``, in a fixed order, with the constraint applied.

    ``macs_fn(config) -> (params, macs)`` is needed only for a macs_ratio
    constraint (pass ``measure.params_and_macs``); ``constraint_check=False``
    keeps every trial (used when only checking the spec).
    """
    source = spec.get("_path", spec.get("name", "spec"))
    name = spec["name"]
    eff = effective(spec, profile)
    layers, sources = [], []
    recipe = eff["profile_layer"].get("config", eff["base"].get("config"))
    if recipe:
        layers.append(config_lib.load_yaml(_recipe_path(str(recipe), source)))
        sources.append(str(recipe))
    base_fields, base_overrides, _ = _split_layer(eff["base"], "base", ("config",))
    profile_fields, profile_overrides, _ = _split_layer(eff["profile_layer"], "profile", _PROFILE_KEYS)
    recipe_overrides = (layers[0].pop("model_overrides", None) or {}) if layers else {}
    layers += [base_fields, profile_fields]
    sources += [f"{source}: base", f"{source}: profile {profile}"]
    common_overrides = {**recipe_overrides, **base_overrides, **profile_overrides}

    bodies: list[tuple[str | None, Mapping[str, Any]]] = []
    if eff.get("axes") or eff.get("trials"):
        bodies.append((None, eff))
    bodies += list(eff["groups"].items())
    derived_top = eff.get("derived") or {}
    # Names that only feed expressions, even where they spell a TrainConfig field (a grid search's
    # alpha, beta, gamma turned into width and depth overrides by ``derived``).
    declared = set(eff.get("variables") or [])

    def make_config(fields: Mapping[str, Any], overrides: Mapping[str, Any], trial_dir: str,
                    where: str) -> config_lib.TrainConfig:
        merged_overrides = {**common_overrides, **overrides}
        top = {**fields, "model_dir": trial_dir, "model_overrides": merged_overrides or None}
        return config_lib.merge(*layers, top, sources=(*sources, where))

    base_config = make_config({}, {}, os.path.join(study_dir, name, "base"), f"{source}: base")
    base_macs: list[int] = []
    n_repeats = repeats or int(eff.get("repeats") or 1)
    trials: list[Trial] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for group, body in bodies:
        where = f"{source}: {'group ' + group if group else 'trials'}"
        group_fields, group_overrides, _ = _split_layer(body, where, _SHAPE_KEYS + _TOP_KEYS) \
            if group else ({}, {}, [])
        derived = {**derived_top, **(body.get("derived") or {})} if group else derived_top
        free = set().union(*(expressions.names(expressions.parse(t, where)) for t in derived.values())) \
            if derived else set()
        # A group may set its own constraint, or none (null): a grid's reference point is no candidate.
        constraint = body.get("constraint", eff.get("constraint")) if group else eff.get("constraint")
        if constraint and "expression" in constraint:
            free |= expressions.names(expressions.parse(constraint["expression"], where))
        for trial_name, values in _units(body, group, where):
            if trial_name in seen:
                raise SpecError([f"{where}: two trials are named {trial_name!r}; give explicit names"])
            seen.add(trial_name)
            fields, overrides = dict(group_fields), dict(group_overrides)
            for key, value in values.items():
                if key in declared:
                    continue
                if key.startswith(OVERRIDE_PREFIX):
                    overrides[key[len(OVERRIDE_PREFIX):]] = value
                elif key in config_lib.FIELDS:
                    fields[key] = value
                elif key not in free:
                    raise SpecError([f"{where}: trial {trial_name}: unknown key {key!r}; use a TrainConfig field, "
                                     f"{OVERRIDE_PREFIX}<ModelSpec field>, or a name that a derived or constraint "
                                     "expression reads"])
            trial_dir = os.path.join(study_dir, name, trial_name)
            config = make_config(fields, overrides, trial_dir, f"{where}: {trial_name}")
            for key, text in derived.items():
                value = expressions.evaluate(text, _namespace(config, values), f"{where}: derived {key}")
                if key.startswith(OVERRIDE_PREFIX):
                    overrides[key[len(OVERRIDE_PREFIX):]] = value
                else:
                    fields[key] = value
            if derived:
                config = make_config(fields, overrides, trial_dir, f"{where}: {trial_name}")
            verdict = None
            if constraint and constraint_check:
                ok, verdict = _apply_constraint(constraint, config, values, base_config, base_macs, macs_fn, where)
                if not ok:
                    rejected.append((trial_name, verdict))
                    continue
            for repeat in range(1, n_repeats + 1):
                run_name = f"{name}/{trial_name}/seed{repeat}"
                trials.append(Trial(
                    study=name, trial=trial_name, name=run_name, group=group, repeat=repeat, axes=dict(values),
                    config=config_lib.replace(config, model_dir=os.path.join(study_dir, run_name),
                                              seed=config.seed + repeat - 1),
                    constraint=verdict))
    if not trials and not rejected:
        raise SpecError([f"{source}: profile {profile}: the spec expands to no trials"])
    return Expansion(trials, rejected)


def _apply_constraint(constraint: Mapping[str, Any], config: config_lib.TrainConfig, values: Mapping[str, Any],
                      base_config: config_lib.TrainConfig, base_macs: list[int],
                      macs_fn: Callable[[config_lib.TrainConfig], tuple[int, int]] | None,
                      where: str) -> tuple[bool, str]:
    if "expression" in constraint:
        text = constraint["expression"]
        ok = bool(expressions.evaluate(text, _namespace(config, values), f"{where}: constraint"))
        return ok, f"{text}: {'kept' if ok else 'rejected'}"
    if macs_fn is None:
        raise ValueError(f"{where}: a macs_ratio constraint needs a MAC counter (macs_fn)")
    if not base_macs:
        base_macs.append(macs_fn(base_config)[1])
    ratio = macs_fn(config)[1] / base_macs[0]
    low, high = constraint["macs_ratio"]
    ok = low <= ratio <= high
    return ok, f"macs_ratio {ratio:.3f} {'in' if ok else 'outside'} [{low:g}, {high:g}]"


def profile_notes(spec: Mapping[str, Any], profile: str | None) -> str:
    return str(((spec.get("profiles") or {}).get(profile) or {}).get("notes", "")) if profile else ""
