"""Referral rules as data: ``workflows/referral-rules.yaml`` (format documented at its top).

Loaded and checked at start-up (:func:`init_app`, called when the profiling blueprint is
registered): every problem is collected and reported as ``file:line: message``, and the app
does not start. ``rso profiling check-rules`` checks a file without starting.

The rules map facts about a person (profile category, interview answers, specific needs, age,
nationality, where they arrived) to referral pathways. Evaluation is pure: :meth:`RuleSet.propose`
takes a dict of facts and returns proposals; operations decide what to store.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from rso.profiling import questions, sharing
from rso.reference import loader as reference
from rso.workflow.definitions import NAME_RE, PRIORITIES
from rso.workflow.loader import LineDict, LineList, LineLoader

FILE_NAME = "referral-rules.yaml"
EXTENSION = "referral_rules"

RSD_MODES = ("regular", "accelerated", "prima_facie")
SEXES = ("F", "M", "X")
ARRIVAL_MODES = ("land", "sea", "air")
TOP_KEYS = ("name", "version", "description", "categories", "rsd", "pathways", "rules")
MATCH_KEYS = ("when", "any", "unless")

#: fact -> kind: "code" (one value, tested against a list), "bool", "set" (several values)
BASE_FACTS: Mapping[str, str] = MappingProxyType({
    "category": "code", "child": "bool", "stateless": "bool", "sex": "code", "nationality": "code",
    "arrival_mode": "code", "office": "code", "state": "code", "specific_needs": "set",
})


def fact_kinds() -> dict[str, str]:
    out = dict(BASE_FACTS)
    for q in questions.QUESTIONS:
        if q.type == "choice":
            out[q.name] = "code"
        elif q.type == "multi":
            out[q.name] = "set"
    return out


class RulesError(Exception):
    """The rules file is invalid; ``problems`` lists each as ``file:line: message``."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the referral rules:"
        return "\n".join([head, *("  " + p for p in self.problems)])


# --- YAML with line numbers ------------------------------------------------------------------


# the workflow loader's line-tracking YAML (one implementation for every file under workflows/)
_Map = LineDict
_Seq = LineList
_Loader = LineLoader


def _line(m: Any, key: Any = None) -> int:
    if key is not None and isinstance(m, _Map):
        return m.key_lines.get(key, m.line)
    return getattr(m, "line", 0)


def _item_line(seq: Any, i: int, default: int) -> int:
    lines = getattr(seq, "item_lines", None)
    return lines[i] if lines and i < len(lines) else default


# --- what a loaded file is ---------------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    fact: str
    kind: str
    #: codes (code/set), True/False (bool), or "any"/"none" (set)
    value: Any

    def holds(self, facts: Mapping[str, Any]) -> bool:
        have = facts.get(self.fact)
        if self.kind == "bool":
            return bool(have) is self.value
        if self.kind == "set":
            have = frozenset(have or ())
            if self.value == "any":
                return bool(have)
            if self.value == "none":
                return not have
            return bool(have & self.value)
        return have is not None and have in self.value


@dataclass(frozen=True)
class Condition:
    tests: tuple[Test, ...]
    line: int = 0

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return all(t.holds(facts) for t in self.tests)


@dataclass(frozen=True)
class Match:
    when: Condition | None = None
    any_of: tuple[Condition, ...] = ()
    unless: tuple[Condition, ...] = ()

    def holds(self, facts: Mapping[str, Any]) -> bool:
        if self.when is not None and not self.when.holds(facts):
            return False
        if self.any_of and not any(c.holds(facts) for c in self.any_of):
            return False
        return not any(c.holds(facts) for c in self.unless)


@dataclass(frozen=True)
class CategoryRule:
    category: str
    match: Match
    line: int = 0


@dataclass(frozen=True)
class RsdMode:
    mode: str
    match: Match
    line: int = 0


@dataclass(frozen=True)
class Pathway:
    name: str
    partner: str
    partner_by_state: Mapping[str, str] = field(default_factory=dict)
    share: tuple[str, ...] = ()

    def partner_for(self, state: str | None) -> str:
        return self.partner_by_state.get(state or "", self.partner)


@dataclass(frozen=True)
class Rule:
    name: str
    pathway: str
    match: Match
    priority: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Proposal:
    """A pathway the rules propose for a person, and why."""

    pathway: str
    rules: tuple[str, ...]
    priority: str = "normal"
    #: RSD only: processing mode and the procedure it runs
    mode: str | None = None
    procedure: str | None = None
    partner: str | None = None
    share: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class RuleSet:
    name: str
    version: int
    source: str
    categories: tuple[CategoryRule, ...]
    rsd_procedures: Mapping[str, str]
    rsd_default: str
    rsd_modes: tuple[RsdMode, ...]
    pathways: Mapping[str, Pathway]
    rules: tuple[Rule, ...]

    def suggest_category(self, facts: Mapping[str, Any]) -> str:
        """The first category whose conditions hold ("other" if none)."""
        return next((c.category for c in self.categories if c.match.holds(facts)), "other")

    def rsd_mode(self, facts: Mapping[str, Any]) -> str:
        return next((m.mode for m in self.rsd_modes if m.match.holds(facts)), self.rsd_default)

    def propose(self, facts: Mapping[str, Any]) -> list[Proposal]:
        """One proposal per pathway whose rules hold, in the order of the first matching rule;
        the most pressing priority among a pathway's rules wins."""
        found: dict[str, list[Rule]] = {}
        for rule in self.rules:
            if rule.match.holds(facts):
                found.setdefault(rule.pathway, []).append(rule)
        out = []
        for pathway, rules in found.items():
            prio = min((r.priority or "normal" for r in rules), key=lambda p: PRIORITIES[p])
            mode = procedure = None
            if pathway == "rsd":
                mode = self.rsd_mode(facts)
                procedure = self.rsd_procedures[mode]
            defaults = self.pathways.get(pathway)
            out.append(Proposal(
                pathway=pathway, rules=tuple(r.name for r in rules), priority=prio, mode=mode, procedure=procedure,
                partner=defaults.partner_for(facts.get("state")) if defaults else None,
                share=defaults.share if defaults else (),
            ))
        return out

    def __repr__(self) -> str:
        return f"<RuleSet {self.name} v{self.version} {len(self.rules)} rules>"


# --- checking ------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, path: Path, procedures_dir: Path | None):
        self.path = path
        self.display = _display(path)
        self.problems: list[tuple[int, int, str]] = []
        self.procedures_dir = procedures_dir
        self.kinds = fact_kinds()
        self.allowed = self._allowed_values()
        self.partners = {p["code"]: p for p in reference.partners()}

    def err(self, line: int, message: str) -> None:
        self.problems.append((line, len(self.problems), message))

    @staticmethod
    def _allowed_values() -> dict[str, frozenset[str]]:
        out = {
            "category": frozenset(c["code"] for c in reference.profile_categories()),
            "sex": frozenset(SEXES),
            "nationality": frozenset(c["code"] for c in reference.countries()),
            "arrival_mode": frozenset(ARRIVAL_MODES),
            "office": frozenset(o["code"] for o in reference.offices()),
            "state": frozenset(m["code"] for m in reference.member_states()),
            "specific_needs": frozenset(n["code"] for n in reference.specific_needs()),
        }
        for q in questions.QUESTIONS:
            if q.type in ("choice", "multi"):
                out[q.name] = frozenset(q.options)
        return out

    def keys(self, m: _Map, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in m:
            if key not in allowed:
                self.err(_line(m, key), f"unknown key '{key}' in {what} (allowed: {', '.join(allowed)})")
        for key, line in m.duplicates:
            self.err(line, f"key '{key}' appears more than once in {what}")

    # conditions
    def condition(self, raw: Any, line: int, what: str) -> Condition | None:
        if not isinstance(raw, _Map) or not raw:
            self.err(line, f"{what} must be a mapping of facts, like {{child: true, category: [asylum_seeker]}}")
            return None
        tests = []
        for key, value in raw.items():
            kline = _line(raw, key)
            kind = self.kinds.get(key)
            if kind is None:
                self.err(kline, f"{what} names unknown fact '{key}' (known: {', '.join(sorted(self.kinds))})")
                continue
            test = self.test(key, kind, value, kline, what)
            if test is not None:
                tests.append(test)
        for key, kline in raw.duplicates:
            self.err(kline, f"fact '{key}' appears more than once in {what}")
        return Condition(tuple(tests), raw.line) if len(tests) == len(raw) else None

    def test(self, key: str, kind: str, value: Any, line: int, what: str) -> Test | None:
        if kind == "bool":
            if not isinstance(value, bool):
                self.err(line, f"'{key}' in {what} must be true or false")
                return None
            return Test(key, kind, value)
        if kind == "set" and value in ("any", "none"):
            return Test(key, kind, value)
        values = [value] if isinstance(value, str | bool) else value
        if not isinstance(values, list) or not values:
            hint = " (or 'any' / 'none')" if kind == "set" else ""
            self.err(line, f"'{key}' in {what} must be a list of codes{hint}")
            return None
        allowed = self.allowed.get(key, frozenset())
        codes = []
        for v in values:
            if isinstance(v, bool) and {"yes", "no"} <= allowed:
                v = "yes" if v else "no"  # YAML reads a bare yes/no as true/false
            if not isinstance(v, str) or v not in allowed:
                shown = ", ".join(sorted(allowed)) if len(allowed) <= 30 else f"{len(allowed)} codes"
                self.err(line, f"'{key}' in {what}: unknown code {v!r} (known: {shown})")
                return None
            codes.append(v)
        return Test(key, kind, frozenset(codes))

    def match(self, raw: _Map, what: str, *, required: bool = True) -> Match | None:
        start = len(self.problems)
        when = None
        if "when" in raw:
            when = self.condition(raw["when"], _line(raw, "when"), f"'when' of {what}")
        lists: dict[str, tuple[Condition, ...]] = {}
        for key in ("any", "unless"):
            if key not in raw:
                lists[key] = ()
                continue
            items = raw[key]
            if not isinstance(items, list) or not items:
                self.err(_line(raw, key), f"'{key}' of {what} must be a list of fact mappings")
                lists[key] = ()
                continue
            conds = [self.condition(c, _item_line(items, i, _line(raw, key)), f"'{key}' of {what}")
                     for i, c in enumerate(items)]
            lists[key] = tuple(c for c in conds if c is not None)
        if required and "when" not in raw and "any" not in raw:
            self.err(raw.line, f"{what} needs 'when' or 'any' (a condition)")
        if len(self.problems) != start:
            return None
        return Match(when, lists["any"], lists["unless"])

    # sections
    def categories(self, raw: Any, line: int) -> tuple[CategoryRule, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.err(line, "'categories' must be a list of {category, when/any/unless}")
            return ()
        out = []
        for i, item in enumerate(raw):
            iline = _item_line(raw, i, line)
            what = f"categories[{i + 1}]"
            if not isinstance(item, _Map):
                self.err(iline, f"{what} must be a mapping with 'category' and a condition")
                continue
            self.keys(item, ("category", *MATCH_KEYS), what)
            code = item.get("category")
            if code not in self.allowed["category"]:
                self.err(_line(item, "category"), f"{what}: unknown profile category {code!r} "
                                                  f"(known: {', '.join(sorted(self.allowed['category']))})")
                continue
            m = self.match(item, what)
            if m is not None:
                out.append(CategoryRule(code, m, iline))
        return tuple(out)

    def rsd(self, raw: Any, line: int) -> tuple[dict[str, str], str, tuple[RsdMode, ...]]:
        procs: dict[str, str] = {}
        if not isinstance(raw, _Map):
            self.err(line, "'rsd' must be a mapping with 'procedures', 'default' and 'modes'")
            return procs, "regular", ()
        self.keys(raw, ("procedures", "default", "modes"), "'rsd'")
        names = self._procedure_names()
        raw_procs = raw.get("procedures")
        if not isinstance(raw_procs, _Map):
            self.err(_line(raw, "procedures"), "'rsd.procedures' must map each mode "
                                               f"({', '.join(RSD_MODES)}) to a procedure name")
        else:
            for mode in RSD_MODES:
                if mode not in raw_procs:
                    self.err(raw_procs.line, f"'rsd.procedures' has no procedure for mode '{mode}'")
            for mode, proc in raw_procs.items():
                pline = _line(raw_procs, mode)
                if mode not in RSD_MODES:
                    self.err(pline, f"unknown RSD mode '{mode}' (known: {', '.join(RSD_MODES)})")
                elif not isinstance(proc, str) or (names is not None and proc not in names):
                    self.err(pline, f"RSD mode '{mode}' names unknown procedure {proc!r} "
                                    f"(no such file in workflows/)")
                else:
                    procs[mode] = proc
        default = raw.get("default", "regular")
        if default not in RSD_MODES:
            self.err(_line(raw, "default"), f"'rsd.default' must be one of {', '.join(RSD_MODES)}")
            default = "regular"
        modes = []
        raw_modes = raw.get("modes") or []
        if not isinstance(raw_modes, list):
            self.err(_line(raw, "modes"), "'rsd.modes' must be a list of {mode, when/any/unless}")
            raw_modes = []
        for i, item in enumerate(raw_modes):
            iline = _item_line(raw_modes, i, _line(raw, "modes"))
            what = f"rsd.modes[{i + 1}]"
            if not isinstance(item, _Map):
                self.err(iline, f"{what} must be a mapping with 'mode' and a condition")
                continue
            self.keys(item, ("mode", *MATCH_KEYS), what)
            if item.get("mode") not in RSD_MODES:
                self.err(_line(item, "mode"), f"{what}: 'mode' must be one of {', '.join(RSD_MODES)}")
                continue
            m = self.match(item, what)
            if m is not None:
                modes.append(RsdMode(item["mode"], m, iline))
        return procs, default, tuple(modes)

    def _procedure_names(self) -> set[str] | None:
        if self.procedures_dir is None:
            return None
        from rso.workflow.loader import procedure_files

        return {p.stem for p in procedure_files(self.procedures_dir)} if self.procedures_dir.is_dir() else set()

    def pathways(self, raw: Any, line: int) -> dict[str, Pathway]:
        out: dict[str, Pathway] = {}
        if not isinstance(raw, _Map):
            self.err(line, "'pathways' must map each pathway to {partner, share}")
            return out
        self.keys(raw, reference.PATHWAYS, "'pathways'")
        for name, spec in raw.items():
            if name not in reference.PATHWAYS:
                continue
            pline = _line(raw, name)
            what = f"pathway '{name}'"
            if not isinstance(spec, _Map):
                self.err(pline, f"{what} must be a mapping with 'partner' and 'share'")
                continue
            self.keys(spec, ("partner", "partner_by_state", "share"), what)
            partner = spec.get("partner")
            ok = self.partner(partner, name, None, _line(spec, "partner"), what)
            by_state: dict[str, str] = {}
            raw_states = spec.get("partner_by_state") or _Map()
            if not isinstance(raw_states, _Map):
                self.err(_line(spec, "partner_by_state"), f"'partner_by_state' of {what} must map States to partners")
                raw_states = _Map()
            for state, code in raw_states.items():
                sline = _line(raw_states, state)
                if state not in self.allowed["state"]:
                    self.err(sline, f"'partner_by_state' of {what}: unknown member State {state!r}")
                elif self.partner(code, name, state, sline, what):
                    by_state[state] = code
            share = spec.get("share") or []
            if not isinstance(share, list):
                self.err(_line(spec, "share"), f"'share' of {what} must be a list of field names")
                share = []
            for i, f in enumerate(share):
                if f not in sharing.NAMES:
                    self.err(_item_line(share, i, _line(spec, "share")),
                             f"'share' of {what}: unknown field {f!r} (known: {', '.join(sharing.NAMES)})")
            if ok:
                out[name] = Pathway(name, partner, MappingProxyType(by_state), tuple(sharing.ordered(share)))
        return out

    def partner(self, code: Any, pathway: str, state: str | None, line: int, what: str) -> bool:
        p = self.partners.get(code) if isinstance(code, str) else None
        if p is None:
            self.err(line, f"{what}: unknown partner {code!r} (fixtures/partners.yaml has: "
                           f"{', '.join(sorted(self.partners))})")
            return False
        if pathway not in p["pathways"]:
            self.err(line, f"{what}: partner {code} does not take the '{pathway}' pathway "
                           f"(it takes: {', '.join(p['pathways']) or 'none'})")
            return False
        if state is not None and p.get("state") not in (None, state):
            self.err(line, f"{what}: partner {code} works in {p.get('state')}, not in {state}")
            return False
        return True

    def rules(self, raw: Any, line: int, pathways: Mapping[str, Pathway]) -> tuple[Rule, ...]:
        if not isinstance(raw, list) or not raw:
            self.err(line, "'rules' must be a non-empty list of {name, refer, when/any/unless}")
            return ()
        out = []
        seen: dict[str, int] = {}
        for i, item in enumerate(raw):
            iline = _item_line(raw, i, line)
            if not isinstance(item, _Map):
                self.err(iline, f"rules[{i + 1}] must be a mapping with 'name', 'refer' and a condition")
                continue
            name = item.get("name")
            what = f"rule '{name}'" if isinstance(name, str) else f"rules[{i + 1}]"
            self.keys(item, ("name", "refer", "priority", "description", *MATCH_KEYS), what)
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.err(_line(item, "name"), f"{what}: 'name' must be lower_case_with_underscores")
                continue
            if name in seen:
                self.err(_line(item, "name"), f"rule '{name}' is already defined on line {seen[name]}")
                continue
            seen[name] = iline
            pathway = item.get("refer")
            if pathway not in reference.PATHWAYS:
                self.err(_line(item, "refer"), f"{what}: 'refer' must be a pathway "
                                               f"({', '.join(reference.PATHWAYS)}), not {pathway!r}")
                continue
            if pathway not in pathways:
                self.err(_line(item, "refer"), f"{what} refers to '{pathway}', which has no entry in 'pathways' "
                                               "(who receives it?)")
            priority = item.get("priority")
            if priority is not None and priority not in PRIORITIES:
                self.err(_line(item, "priority"), f"{what}: 'priority' must be one of {', '.join(PRIORITIES)}")
            m = self.match(item, what)
            if m is not None:
                out.append(Rule(name, pathway, m, priority, iline))
        return tuple(out)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_rules(path: str | Path, *, procedures_dir: str | Path | None = None) -> RuleSet:
    """Load and check a rules file; raise :class:`RulesError` listing every problem as
    ``file:line: message``. ``procedures_dir``: check RSD procedure names against its files."""
    path = Path(path)
    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([f"{display}:1: cannot read the referral rules ({exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc})"]) from None
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RulesError([f"{display}:{mark.line + 1 if mark else 1}: YAML syntax error: "
                          f"{exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise RulesError([f"{display}:1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    c = _Checker(path, Path(procedures_dir) if procedures_dir is not None else None)
    if not isinstance(doc, _Map):
        raise RulesError([f"{display}:1: the referral rules must be a mapping (name, version, categories, "
                          "rsd, pathways, rules)"])
    c.keys(doc, TOP_KEYS, "the referral rules")
    if doc.get("name") != "referral-rules":
        c.err(_line(doc, "name"), "'name' must be referral-rules")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        c.err(_line(doc, "version"), "'version' must be a whole number from 1 (bump it on every change)")
    categories = c.categories(doc.get("categories"), _line(doc, "categories"))
    procs, default, modes = c.rsd(doc.get("rsd"), _line(doc, "rsd"))
    pathways = c.pathways(doc.get("pathways"), _line(doc, "pathways"))
    rules = c.rules(doc.get("rules"), _line(doc, "rules"), pathways)
    if c.problems:
        c.problems.sort()
        raise RulesError(f"{display}:{line}: {msg}" for line, _, msg in c.problems)
    return RuleSet(
        name="referral-rules", version=version, source=display, categories=categories,
        rsd_procedures=MappingProxyType(procs), rsd_default=default, rsd_modes=modes,
        pathways=MappingProxyType(pathways), rules=rules,
    )


# --- the application's rules -----------------------------------------------------------------------

_default: RuleSet | None = None
_lock = threading.Lock()


def rules_path(config: Mapping[str, Any]) -> tuple[Path, Path]:
    """(rules file, procedures directory) for a configuration: ``REFERRAL_RULES`` if set, else
    ``referral-rules.yaml`` in ``WORKFLOWS_DIR`` (the repository's ``workflows/`` by default)."""
    from rso.workflow.registry import DEFAULT_DIRECTORY

    directory = Path(config.get("WORKFLOWS_DIR") or DEFAULT_DIRECTORY)
    return Path(config.get("REFERRAL_RULES") or directory / FILE_NAME), directory


def init_app(app) -> RuleSet:
    """Load the rules at start-up; an invalid (or missing) file raises RulesError: start-up stops."""
    path, directory = rules_path(app.config)
    ruleset = load_rules(path, procedures_dir=directory)
    app.extensions[EXTENSION] = ruleset
    return ruleset


def get_rules() -> RuleSet:
    """The app's rules inside an app context, else the repository's file (loaded once)."""
    global _default
    from flask import current_app, has_app_context

    if has_app_context():
        ruleset = current_app.extensions.get(EXTENSION)
        if isinstance(ruleset, RuleSet):
            return ruleset
    if _default is None:
        with _lock:
            if _default is None:
                path, directory = rules_path({})
                _default = load_rules(path, procedures_dir=directory)
    return _default
