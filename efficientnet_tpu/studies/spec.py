"""A study as data: load and check a spec YAML, and expand it into named trials.

A spec names a base training config (a configs/ recipe and/or inline
TrainConfig fields and model overrides), what varies (``axes``: a product of
lists; ``trials``: an explicit list; ``groups``: named sets of either, each
with its own constraint), optional ``derived`` fields computed by a safe
expression from a trial's values (``variables`` names values that only feed
expressions), an optional constraint, repeats, and profiles (smoke, cpu,
cifar, paper) that override the base. Every trial becomes an ordinary
TrainConfig whose model_dir is ``<study_dir>/<study>/<trial>/seed<repeat>``.
The YAML is parsed once into typed objects (`StudySpec`, `Group`, `Profile`,
`Settings`, `Shape`, `Constraint`, and the report section's `ReportSpec` from
`studies.report_spec`); `expand` turns one profile of it into trials in small
steps, and `load_spec` resolves every
trial of every profile (variant, model overrides, dataset: `studies.resolve`)
so a spec whose trials cannot be built is refused before any trial trains.
Nothing here builds a network: MACs, when a constraint needs them, come from
a function the caller passes (``measure.params_and_macs``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shlex
from typing import Any, Callable, Iterator, Mapping, Sequence

import yaml

from efficientnet_tpu import shipped
from efficientnet_tpu.studies import expressions, report_spec, resolve
from efficientnet_tpu.studies.report_spec import ReportSpec
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


# ------------------------------------------------------------------ the typed spec

@dataclasses.dataclass(frozen=True)
class Settings:
    """What a base, profile or group layer sets: TrainConfig fields and model overrides."""

    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @staticmethod
    def parse(layer: Mapping[str, Any], where: str, skip: Sequence[str]) -> tuple[Settings, list[str]]:
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
        return Settings(fields, overrides), problems


@dataclasses.dataclass(frozen=True)
class Constraint:
    """Which configurations a study keeps: a MACs ratio to the base, or a boolean expression."""

    macs_ratio: tuple[float, float] | None = None
    expression: str | None = None

    @staticmethod
    def parse(raw: Any, where: str) -> tuple[Constraint | None, list[str]]:
        if raw is None:
            return None, []
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("macs_ratio", "expression"):
            return None, [f"{where}: constraint must be {{macs_ratio: [low, high]}} or {{expression: '...'}}"]
        if "macs_ratio" in raw:
            bounds = raw["macs_ratio"]
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float))
                                                                         for b in bounds) and bounds[0] <= bounds[1]):
                return None, [f"{where}: constraint macs_ratio must be [low, high], got {bounds!r}"]
            return Constraint(macs_ratio=(bounds[0], bounds[1])), []
        try:
            expressions.parse(raw["expression"], f"{where}: constraint")
        except ValueError as e:
            return None, [str(e)]
        return Constraint(expression=raw["expression"]), []

    def names(self, where: str) -> set[str]:
        """The values an expression constraint reads (they may be axes that are no TrainConfig field)."""
        return expressions.names(expressions.parse(self.expression, where)) if self.expression else set()


@dataclasses.dataclass(frozen=True)
class Shape:
    """What varies: an axes product, explicit trials and derived fields."""

    axes: Mapping[str, list] = dataclasses.field(default_factory=dict)
    trials: tuple[Mapping[str, Any], ...] = ()
    derived: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @staticmethod
    def parse(body: Mapping[str, Any], where: str) -> tuple[Shape, list[str]]:
        problems = []
        axes = body.get("axes") or {}
        if not isinstance(axes, dict) or any(not isinstance(v, list) or not v for v in axes.values()):
            problems.append(f"{where}: axes must map a key to a non-empty list of values")
            axes = {}
        trials = body.get("trials") or []
        if not isinstance(trials, list) or any(not isinstance(t, dict) for t in trials):
            problems.append(f"{where}: trials must be a list of mappings (name, fields, model_overrides)")
            trials = []
        derived = body.get("derived") or {}
        if not isinstance(derived, dict):
            problems.append(f"{where}: derived must map a field to an expression string")
            derived = {}
        for key, text in derived.items():
            try:
                expressions.parse(text, f"{where}: derived {key}")
            except ValueError as e:
                problems.append(str(e))
        return Shape(dict(axes), tuple(trials), dict(derived)), problems

    def changed_by(self, changes: Mapping[str, Any]) -> Shape:
        """This shape with a profile's changes: axes and derived per key, trials replaced."""
        return Shape({**self.axes, **(changes.get("axes") or {})},
                     tuple(changes["trials"]) if "trials" in changes else self.trials,
                     {**self.derived, **(changes.get("derived") or {})})

    def __bool__(self) -> bool:
        return bool(self.axes or self.trials)


# A group without a constraint key takes the study's; ``constraint: null`` keeps every configuration.
INHERIT = "inherit"


@dataclasses.dataclass(frozen=True)
class Group:
    """A named set of trials with its own settings and, optionally, its own constraint."""

    name: str
    shape: Shape
    settings: Settings
    constraint: Constraint | str | None = INHERIT
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @staticmethod
    def parse(name: str, body: Any, where: str) -> tuple[Group | None, list[str]]:
        if not isinstance(body, dict) or not any(k in body for k in ("axes", "trials")):
            return None, [f"{where}: group {name!r} needs axes or trials"]
        return Group._from(name, body, f"{where}: group {name}")

    @staticmethod
    def _from(name: str, body: Mapping[str, Any], where: str) -> tuple[Group, list[str]]:
        shape, problems = Shape.parse(body, where)
        constraint, more = Constraint.parse(body.get("constraint"), where)
        settings, most = Settings.parse(body, where, _SHAPE_KEYS + ("constraint",))
        return Group(name, shape, settings, constraint if "constraint" in body else INHERIT, dict(body)), \
            problems + more + most

    def changed_by(self, changes: Mapping[str, Any], where: str) -> Group:
        """The group under a profile: axes and derived merged per key, anything else replaced."""
        merged = dict(self.raw)
        for key, value in changes.items():
            merged[key] = {**(merged.get(key) or {}), **value} if key in ("axes", "derived") else value
        group, problems = Group._from(self.name, merged, where)
        if problems:
            raise SpecError(problems)
        return group


@dataclasses.dataclass(frozen=True)
class Profile:
    """One way to run a study (smoke, cpu, cifar, paper): a recipe and changes to the base, shape and groups."""

    name: str
    recipe: str | None
    notes: str
    settings: Settings
    changes: Mapping[str, Any]  # axes / trials / derived of the study's own shape
    groups: Mapping[str, Mapping[str, Any]]
    repeats: int | None
    constraint: Constraint | str | None  # INHERIT when the profile does not set one
    variables: tuple[str, ...] | None

    @staticmethod
    def parse(name: str, body: Any, where: str, groups: Mapping[str, Group]) -> tuple[Profile | None, list[str]]:
        if not isinstance(body, dict):
            return None, [f"{where} must be a mapping of overrides"]
        settings, problems = Settings.parse(body, where, _PROFILE_KEYS)
        problems += Shape.parse(body, where)[1]
        constraint, more = Constraint.parse(body.get("constraint"), where)
        problems += more
        changes = body.get("groups") or {}
        if not isinstance(changes, dict):
            problems.append(f"{where}: groups must map a group name to its changes")
            changes = {}
        for group in changes:
            if group not in groups:
                problems.append(f"{where}: group {group!r} is not one of the spec's groups ({', '.join(groups)})")
        return Profile(name=name, recipe=body.get("config"), notes=str(body.get("notes", "")), settings=settings,
                       changes={k: body[k] for k in _SHAPE_KEYS if k in body}, groups=changes,
                       repeats=body.get("repeats"), constraint=constraint if "constraint" in body else INHERIT,
                       variables=tuple(body["variables"]) if body.get("variables") is not None else None), problems


def _report(raw: Any, source: str) -> tuple[ReportSpec, list[str]]:
    """The typed ``report:`` section (its defaults when absent), or one line naming the bad key."""
    try:
        return report_spec.parse(raw, source), []
    except ValueError as e:
        return ReportSpec(), [" ".join(str(e).split())]


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """A parsed, checked spec; ``raw`` is the YAML mapping it came from (saved as the study's study.yaml)."""

    name: str
    path: str
    title: str | None
    seeds: tuple[str, ...]
    description: str | None
    recipe: str | None
    base: Settings
    shape: Shape
    groups: Mapping[str, Group]
    variables: tuple[str, ...]
    constraint: Constraint | None
    repeats: int
    profiles: Mapping[str, Profile]
    report: ReportSpec
    raw: Mapping[str, Any]


def _parse_header(data: Mapping[str, Any], source: str) -> list[str]:
    """The top-level keys, the name and the seeds."""
    problems = [f"{source}: unknown top-level key {k!r}; valid keys: {', '.join(_TOP_KEYS)}"
                for k in data if k not in _TOP_KEYS]
    if not isinstance(data.get("name"), str) or not data["name"].replace("_", "").isalnum():
        problems.append(f"{source}: name must be letters, digits and underscores, got {data.get('name')!r}")
    if not isinstance(data.get("seeds") or [], list):
        problems.append(f"{source}: seeds must be a list of seed document numbers, got {data['seeds']!r}")
    return problems


def _parse_base(data: Mapping[str, Any], source: str) -> tuple[Mapping[str, Any], Settings, list[str]]:
    """The base layer (a recipe and TrainConfig fields), that something varies, and the repeats."""
    problems = []
    base = data.get("base") or {}
    if not isinstance(base, dict):
        problems.append(f"{source}: base must be a mapping (config: a recipe path, TrainConfig fields, "
                        "model_overrides)")
        base = {}
    settings, more = Settings.parse(base, f"{source}: base", ("config",))
    problems += more
    if not any(k in data for k in ("axes", "trials", "groups")):
        problems.append(f"{source}: give axes (lists to combine), trials (an explicit list) or groups")
    repeats = data.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        problems.append(f"{source}: repeats must be a whole number >= 1, got {repeats!r}")
    return base, settings, problems


def _parse_named(raw: Any, source: str, what: str, parse: Callable[[str, Any], tuple[Any, list[str]]]
                 ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(raw bodies, parsed objects, problems) of a mapping of named groups or profiles."""
    if not isinstance(raw or {}, dict):
        return {}, {}, [f"{source}: {what}"]
    parsed, problems = {}, []
    for name, body in (raw or {}).items():
        item, more = parse(name, body)
        problems += more
        if item is not None:
            parsed[name] = item
    return dict(raw or {}), parsed, problems


def parse_spec(data: Mapping[str, Any], source: str) -> StudySpec:
    """The typed spec of a YAML mapping; SpecError lists every structural problem, one line each."""
    data = dict(data)
    data.setdefault("name", os.path.splitext(os.path.basename(source))[0])
    problems = _parse_header(data, source)
    base, settings, more = _parse_base(data, source)
    shape, shape_problems = Shape.parse(data, source)
    raw_groups, groups, group_problems = _parse_named(
        data.get("groups"), source, "groups must map a group name to {axes: ...} or {trials: [...]}",
        lambda name, body: Group.parse(name, body, source))
    constraint, constraint_problems = Constraint.parse(data.get("constraint"), source)
    _, profiles, profile_problems = _parse_named(
        data.get("profiles"), source, f"profiles must map a profile name ({', '.join(PROFILES)}) to overrides",
        lambda name, body: Profile.parse(name, body, f"{source}: profile {name}", raw_groups))
    report, report_problems = _report(data.get("report"), source)
    problems += more + shape_problems + group_problems + constraint_problems + profile_problems + report_problems
    if problems:
        raise SpecError(problems)
    return StudySpec(name=data["name"], path=source, title=data.get("title"),
                     seeds=tuple(str(seed) for seed in data.get("seeds") or ()), description=data.get("description"),
                     recipe=base.get("config"), base=settings, shape=shape, groups=groups,
                     variables=tuple(data.get("variables") or ()), constraint=constraint,
                     repeats=data.get("repeats", 1), profiles=profiles, report=report, raw=data)


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
    if study.endswith((".yaml", ".yml")) or os.sep in study or "/" in study or os.path.isdir(study):
        return study
    path = os.path.join(STUDIES_DIR, f"{study}.yaml")
    if not os.path.exists(path):
        names = ", ".join(name for name, _ in list_studies())
        raise SpecError([f"no study named {study!r}; shipped studies: {names} (or give a path to a .yaml file)"])
    return path


_NOT_A_FILE = "is a directory; give --study a shipped study name (see --list) or the path of a .yaml spec file"


def _read_text(path: str) -> str:
    if "://" in path:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel  (gs:// specs need TF's file system)

        if tf.io.gfile.isdir(path):
            raise SpecError([f"spec {path} {_NOT_A_FILE}"])
        if not tf.io.gfile.exists(path):
            raise SpecError([f"spec file {path} does not exist"])
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    if os.path.isdir(path):
        raise SpecError([f"spec {path} {_NOT_A_FILE}"])
    if not os.path.exists(path):
        raise SpecError([f"spec file {path} does not exist"])
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError([f"cannot read spec file {path}: {e.strerror if isinstance(e, OSError) else e}"]) from None


def load_spec(study: str) -> StudySpec:
    """Reads, parses and checks a spec (a shipped name or a path); SpecError lists every problem found.

    Checked means: the structure, every profile's expansion, and every trial
    of every profile resolved (variant, model overrides, dataset), so a spec
    that cannot run is refused before its first trial trains.
    """
    path = spec_path(study)
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        raise SpecError([f"{path} is not valid YAML: {' '.join(str(e).split())}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{path} must hold a mapping (name, base, axes, profiles, ...), got "
                         f"{type(data).__name__}"])
    spec = parse_spec(data, path)
    problems = check_spec(spec, path)
    if problems:
        raise SpecError(problems)
    return spec


def check_spec(spec: StudySpec | Mapping[str, Any], source: str) -> list[str]:
    """Every problem of a spec, one line each (an empty list when it is sound and every trial resolves)."""
    try:
        spec = spec if isinstance(spec, StudySpec) else parse_spec(spec, source)
    except SpecError as e:
        return e.problems
    problems: list[str] = []
    trials: list[tuple[str | None, Trial]] = []
    for profile in [None, *spec.profiles]:
        try:
            expansion = expand(spec, profile, study_dir="<study_dir>", repeats=1, constraint_check=False)
        except SpecError as e:
            problems += e.problems
        except ValueError as e:
            problems.append(f"{source}: profile {profile or '(none)'}: {' '.join(str(e).split())}")
        else:
            trials += [(profile, trial) for trial in expansion.trials]
    return problems or resolve.problems([(f"trial {trial.trial} (profile {profile or 'base'})", trial.config)
                                         for profile, trial in trials], source)


# ---------------------------------------------------------------- expansion

def _recipe_path(recipe: str, spec_file: str) -> str:
    """A recipe path as given, else relative to the spec's folder, else to the repository root."""
    for candidate in (recipe, os.path.join(os.path.dirname(spec_file), recipe), os.path.join(REPO_ROOT, recipe)):
        if os.path.exists(candidate):
            return candidate
    return recipe


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


def _units(shape: Shape, group: str | None, where: str) -> list[tuple[str, dict[str, Any]]]:
    """(trial name, flat values) for a shape's axes product and explicit trials."""
    out = []
    if shape.axes:
        keys = list(shape.axes)
        for combination in itertools.product(*(shape.axes[k] for k in keys)):
            values = dict(zip(keys, combination))
            out.append((_trial_name(group, values), values))
    for index, trial in enumerate(shape.trials):
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


@dataclasses.dataclass(frozen=True)
class _Body:
    """One source of trials under a profile: the study's own shape, or a group."""

    group: str | None
    shape: Shape
    settings: Settings
    constraint: Constraint | None
    where: str

    def free_names(self) -> set[str]:
        """Values that only feed the derived fields and the constraint."""
        names = set().union(*(expressions.names(expressions.parse(t, self.where)) for t in self.shape.derived.values()))
        return names | (self.constraint.names(self.where) if self.constraint else set())


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A study under one profile: the config layers every trial shares and the bodies of trials."""

    spec: StudySpec
    profile: str | None
    layers: tuple[Mapping[str, Any], ...]
    sources: tuple[str, ...]
    common_overrides: Mapping[str, Any]
    bodies: tuple[_Body, ...]
    variables: frozenset[str]
    repeats: int
    study_dir: str

    def config(self, fields: Mapping[str, Any], overrides: Mapping[str, Any], trial: str,
               where: str) -> config_lib.TrainConfig:
        merged = {**self.common_overrides, **overrides}
        top = {**fields, "model_dir": os.path.join(self.study_dir, self.spec.name, trial),
               "model_overrides": merged or None}
        return config_lib.merge(*self.layers, top, sources=(*self.sources, where))


def _profile(spec: StudySpec, profile: str | None) -> Profile | None:
    if profile is None:
        return None
    if profile not in spec.profiles:
        raise SpecError([f"study {spec.name!r} has no profile {profile!r}; its profiles: "
                         f"{', '.join(spec.profiles) or 'none'}"])
    return spec.profiles[profile]


def _bodies(spec: StudySpec, chosen: Profile | None) -> tuple[_Body, ...]:
    """The study's shape and its groups, with the profile's changes applied."""
    source = spec.path
    shape = spec.shape.changed_by(chosen.changes) if chosen else spec.shape
    constraint = spec.constraint if chosen is None or chosen.constraint == INHERIT else chosen.constraint
    bodies = [_Body(None, shape, Settings(), constraint, f"{source}: trials")] if shape else []
    for name, group in spec.groups.items():
        where = f"{source}: group {name}"
        if chosen is not None and name in chosen.groups:
            group = group.changed_by(chosen.groups[name], where)
        own = Shape(group.shape.axes, group.shape.trials, {**shape.derived, **group.shape.derived})
        bodies.append(_Body(name, own, group.settings, constraint if group.constraint == INHERIT
                            else group.constraint, where))
    return tuple(bodies)


def plan(spec: StudySpec, profile: str | None, study_dir: str, repeats: int | None = None) -> _Plan:
    """The layers and bodies of trials of ``spec`` under ``profile``."""
    chosen = _profile(spec, profile)
    recipe = chosen.recipe if chosen is not None and chosen.recipe else spec.recipe
    layers: list[Mapping[str, Any]] = []
    sources: list[str] = []
    recipe_overrides: Mapping[str, Any] = {}
    if recipe:
        loaded = config_lib.load_yaml(_recipe_path(str(recipe), spec.path))
        recipe_overrides = loaded.pop("model_overrides", None) or {}
        layers.append(loaded)
        sources.append(str(recipe))
    profile_settings = chosen.settings if chosen else Settings()
    layers += [spec.base.fields, profile_settings.fields]
    sources += [f"{spec.path}: base", f"{spec.path}: profile {profile}"]
    variables = chosen.variables if chosen is not None and chosen.variables is not None else spec.variables
    return _Plan(spec=spec, profile=profile, layers=tuple(layers), sources=tuple(sources),
                 common_overrides={**recipe_overrides, **spec.base.overrides, **profile_settings.overrides},
                 bodies=_bodies(spec, chosen), variables=frozenset(variables), study_dir=study_dir,
                 repeats=repeats or (chosen.repeats if chosen is not None and chosen.repeats else spec.repeats))


def _split_values(body: _Body, trial: str, values: Mapping[str, Any], variables: frozenset[str]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's (TrainConfig fields, model overrides): the group's settings, then the trial's own values."""
    fields, overrides = dict(body.settings.fields), dict(body.settings.overrides)
    free = body.free_names()
    for key, value in values.items():
        if key in variables:
            continue
        if key.startswith(OVERRIDE_PREFIX):
            overrides[key[len(OVERRIDE_PREFIX):]] = value
        elif key in config_lib.FIELDS:
            fields[key] = value
        elif key not in free:
            raise SpecError([f"{body.where}: trial {trial}: unknown key {key!r}; use a TrainConfig field, "
                             f"{OVERRIDE_PREFIX}<ModelSpec field>, or a name that a derived or constraint "
                             "expression reads"])
    return fields, overrides


def _trial_config(study: _Plan, body: _Body, trial: str, values: Mapping[str, Any]) -> config_lib.TrainConfig:
    """A configuration's TrainConfig, with its derived fields computed from its values."""
    fields, overrides = _split_values(body, trial, values, study.variables)
    where = f"{body.where}: {trial}"
    config = study.config(fields, overrides, trial, where)
    if not body.shape.derived:
        return config
    for key, text in body.shape.derived.items():
        value = expressions.evaluate(text, _namespace(config, values), f"{body.where}: derived {key}")
        if key.startswith(OVERRIDE_PREFIX):
            overrides[key[len(OVERRIDE_PREFIX):]] = value
        else:
            fields[key] = value
    return study.config(fields, overrides, trial, where)


def _namespace(config: config_lib.TrainConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """What expressions may read: the config's numbers, its model overrides, the trial's own values."""
    space = {k: v for k, v in config.to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    space.update({k: v for k, v in (config.model_overrides or {}).items() if isinstance(v, (int, float))})
    space.update({k.split(".")[-1]: v for k, v in values.items() if isinstance(v, (int, float))})
    return space


def _repeats(study: _Plan, body: _Body, trial: str, values: Mapping[str, Any], config: config_lib.TrainConfig,
             verdict: str | None) -> list[Trial]:
    """One Trial per repeat: its own directory and seed."""
    out = []
    for repeat in range(1, study.repeats + 1):
        run_name = f"{study.spec.name}/{trial}/seed{repeat}"
        out.append(Trial(study=study.spec.name, trial=trial, name=run_name, group=body.group, repeat=repeat,
                         axes=dict(values), constraint=verdict,
                         config=config_lib.replace(config, model_dir=os.path.join(study.study_dir, run_name),
                                                   seed=config.seed + repeat - 1)))
    return out


def _named_units(study: _Plan) -> Iterator[tuple[_Body, str, dict[str, Any]]]:
    """(body, trial name, values) of every configuration in the plan's order; a repeated name is refused."""
    seen: set[str] = set()
    for body in study.bodies:
        for trial, values in _units(body.shape, body.group, body.where):
            if trial in seen:
                raise SpecError([f"{body.where}: two trials are named {trial!r}; give explicit names"])
            seen.add(trial)
            yield body, trial, values


def expand(spec: StudySpec | Mapping[str, Any], profile: str | None, *, study_dir: str, repeats: int | None = None,
           macs_fn: Callable[[config_lib.TrainConfig], tuple[int, int]] | None = None,
           constraint_check: bool = True) -> Expansion:
    """The trials of ``spec`` under ``profile``, in a fixed order, with the constraint applied.

    ``macs_fn(config) -> (params, macs)`` is needed only for a macs_ratio
    constraint (pass ``measure.params_and_macs``); ``constraint_check=False``
    keeps every trial (used when only checking the spec).
    """
    spec = spec if isinstance(spec, StudySpec) else parse_spec(spec, str(spec.get("name", "spec")))
    study = plan(spec, profile, study_dir, repeats)
    base_config = study.config({}, {}, "base", f"{spec.path}: base")
    base_macs: list[int] = []
    trials: list[Trial] = []
    rejected: list[tuple[str, str]] = []
    for body, trial, values in _named_units(study):
        config = _trial_config(study, body, trial, values)
        ok, verdict = True, None
        if body.constraint and constraint_check:
            ok, verdict = _apply_constraint(body.constraint, config, values, base_config, base_macs, macs_fn,
                                            body.where)
        if ok:
            trials += _repeats(study, body, trial, values, config, verdict)
        else:
            rejected.append((trial, verdict))
    if not trials and not rejected:
        raise SpecError([f"{spec.path}: profile {profile}: the spec expands to no trials"])
    return Expansion(trials, rejected)


def _apply_constraint(constraint: Constraint, config: config_lib.TrainConfig, values: Mapping[str, Any],
                      base_config: config_lib.TrainConfig, base_macs: list[int],
                      macs_fn: Callable[[config_lib.TrainConfig], tuple[int, int]] | None,
                      where: str) -> tuple[bool, str]:
    if constraint.expression is not None:
        text = constraint.expression
        ok = bool(expressions.evaluate(text, _namespace(config, values), f"{where}: constraint"))
        return ok, f"{text}: {'kept' if ok else 'rejected'}"
    if macs_fn is None:
        raise ValueError(f"{where}: a macs_ratio constraint needs a MAC counter (macs_fn)")
    if not base_macs:
        base_macs.append(macs_fn(base_config)[1])
    ratio = macs_fn(config)[1] / base_macs[0]
    low, high = constraint.macs_ratio
    ok = low <= ratio <= high
    return ok, f"macs_ratio {ratio:.3f} {'in' if ok else 'outside'} [{low:g}, {high:g}]"


def profile_notes(spec: StudySpec, profile: str | None) -> str:
    """The notes of ``profile`` (what its data can and cannot show); empty for the base or no notes."""
    return spec.profiles[profile].notes if profile in spec.profiles else ""
