"""Fair shares of a resettlement caseload: a configurable distribution key.

Plain functions, no database. The indicators come from the reference data
(``rso.reference.loader.resettlement_states()``: population, GDP in current USD millions,
area in km², unemployment rate in %, refugees hosted).

Formulas
--------
For the participating States ``i = 1..n``, with population ``P``, GDP ``G``, area ``A``,
unemployment rate ``U`` and refugees hosted ``R``, each criterion gives every State a
component that sums to one over the States:

* population          ``p_i = P_i / ΣP``
* GDP                 ``g_i = G_i / ΣG``
* area                ``a_i = A_i / ΣA``
* unemployment        ``u_i = (1/U_i) / Σ(1/U_j)``, with ``U`` floored at 0.5 %: the inverse, so a
  State with more unemployment takes a smaller share (the corrective of the 2015 EU key)
* refugees hosted     ``r_i = (1/e_i) / Σ(1/e_j)`` with ``e_i = max(R_i / P_i, 10⁻⁶)``, the
  refugees already hosted per inhabitant (floored at one per million): the inverse, so a
  State already hosting many refugees per inhabitant takes a smaller share (the "past asylum
  effort" corrective of the 2015 EU key)

With non-negative weights ``w`` (any scale; they are divided by their sum), a State's key is
``k_i = Σ_c w_c · c_i / Σ_c w_c`` and its quota of a caseload ``N`` is ``N · k_i``.

The two correctives are not proportional to a State's size, so on their own they would hand a
small State far more than its size suggests. A key may therefore cap their effect (the 2015 EU
key caps it at 30 %): with ``b_i`` the key of the size criteria alone (population, GDP, area,
with their weights), each ``k_i`` is clipped to ``[(1 − cap) · b_i, (1 + cap) · b_i]`` and the
clipped keys are divided by their sum (so they sum to one again). Quotas are
rounded by the largest-remainder (Hamilton) method: every State gets ``floor(N · k_i)``, and the
places left over go one each to the largest fractional parts (ties: the larger key, then the
State code), so the shares always sum exactly to ``N``. Arithmetic is exact (fractions), so
the result does not depend on floating-point rounding.

Presets
-------
* ``eu_2015``: the European Commission's relocation key of 2015 (COM(2015) 450, annex):
  40 % population, 40 % GDP, 10 % unemployment (inverse), 10 % past asylum effort (inverse;
  here: refugees hosted per inhabitant), the effect of the two correctives capped at 30 % of
  the population-and-GDP key (as the Commission did).
* ``proposal_1994``: the German Council presidency's 1994 burden-sharing proposal: population,
  area and GDP, weighted equally (one third each).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from rso.errors import ValidationFailed

CRITERIA = ("population", "gdp", "area", "unemployment", "refugees")
CRITERION_LABELS = {
    "population": "Population",
    "gdp": "GDP",
    "area": "Area",
    "unemployment": "Unemployment (inverse)",
    "refugees": "Refugees already hosted per inhabitant (inverse)",
}

PRESETS: dict[str, dict[str, Fraction]] = {
    "eu_2015": {"population": Fraction(40), "gdp": Fraction(40), "area": Fraction(0),
                "unemployment": Fraction(10), "refugees": Fraction(10)},
    "proposal_1994": {"population": Fraction(1, 3), "gdp": Fraction(1, 3), "area": Fraction(1, 3),
                      "unemployment": Fraction(0), "refugees": Fraction(0)},
}
#: cap on the correctives' effect per preset (see the module docstring); custom keys: none
PRESET_CAPS: dict[str, Fraction] = {"eu_2015": Fraction(3, 10)}
SIZE_CRITERIA = ("population", "gdp", "area")
CORRECTIVES = ("unemployment", "refugees")
PRESET_LABELS = {
    "eu_2015": "EU relocation key 2015 (40% population, 40% GDP, 10% unemployment, 10% past effort)",
    "proposal_1994": "1994 proposal (population, area, GDP, one third each)",
}

#: unemployment rates below this (in %) count as this (a 0 % rate would take everything)
MIN_UNEMPLOYMENT = Fraction(1, 2)
#: refugees per inhabitant below this count as this (one per million)
MIN_REFUGEES_PER_INHABITANT = Fraction(1, 1_000_000)
MAX_CASELOAD = 10_000_000


@dataclass(frozen=True)
class FairShare:
    code: str
    name: str
    #: the State's key (fraction of the caseload), exact
    key: Fraction
    #: caseload × key before rounding
    quota: Fraction
    #: whole places after largest-remainder rounding
    share: int
    #: each criterion's component for this State
    components: Mapping[str, Fraction]
    #: the key of the size criteria alone (what a cap on the correctives is measured against)
    base: Fraction | None = None

    @property
    def key_percent(self) -> float:
        return float(self.key * 100)


def _number(value, field: str) -> Fraction:
    if isinstance(value, bool):
        raise ValidationFailed({field: "Must be a number."})
    if isinstance(value, Fraction | int):
        out = Fraction(value)
    elif isinstance(value, float):
        out = Fraction(str(value))
    elif isinstance(value, str):
        try:
            out = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValidationFailed({field: "Must be a number."}) from None
    else:
        raise ValidationFailed({field: "Must be a number."})
    return out


def resolve_weights(preset: str | None = None, weights: Mapping[str, object] | None = None) -> dict[str, Fraction]:
    """The weights to use: a preset's, or the given ones (``weights`` wins when both are given).

    Refuses (ValidationFailed, naming the field) an unknown preset or criterion, a negative or
    non-numeric weight, and weights that are all zero."""
    if weights:
        unknown = sorted(set(weights) - set(CRITERIA))
        if unknown:
            raise ValidationFailed({f"weights.{unknown[0]}": f"Unknown criterion; use {', '.join(CRITERIA)}."})
        out = {}
        for c in CRITERIA:
            w = weights.get(c)
            value = Fraction(0) if w is None or w == "" else _number(w, f"weights.{c}")
            if value < 0 or value > 1000:
                raise ValidationFailed({f"weights.{c}": "Must be between 0 and 1000."})
            out[c] = value
        if not any(out.values()):
            raise ValidationFailed({"weights": "Give at least one criterion a weight above zero."})
        return out
    if preset is None or preset == "":
        preset = "eu_2015"
    if preset not in PRESETS:
        raise ValidationFailed({"preset": f"Unknown preset; use {', '.join(PRESETS)}."})
    return dict(PRESETS[preset])


def components(states: list[dict]) -> dict[str, dict[str, Fraction]]:
    """Each criterion's component per State code (see the module docstring)."""

    def normalise(values: dict[str, Fraction]) -> dict[str, Fraction]:
        total = sum(values.values())
        if total == 0:
            return {k: Fraction(1, len(values)) for k in values}
        return {k: v / total for k, v in values.items()}

    pop = {s["code"]: Fraction(int(s["population"])) for s in states}
    out = {
        "population": normalise(pop),
        "gdp": normalise({s["code"]: Fraction(int(s["gdp_usd_million"])) for s in states}),
        "area": normalise({s["code"]: Fraction(int(s["area_km2"])) for s in states}),
        "unemployment": normalise({
            s["code"]: 1 / max(Fraction(str(s["unemployment_rate"])), MIN_UNEMPLOYMENT) for s in states}),
        "refugees": normalise({
            s["code"]: 1 / max(Fraction(int(s["refugees_hosted"])) / max(pop[s["code"]], Fraction(1)),
                               MIN_REFUGEES_PER_INHABITANT)
            for s in states}),
    }
    return out


def largest_remainder(quotas: Mapping[str, Fraction], total: int,
                      tie_break: Mapping[str, Fraction] | None = None) -> dict[str, int]:
    """Round ``quotas`` (which sum to ``total``) to whole numbers summing exactly to ``total``:
    floors first, then one more to each of the largest fractional parts (ties: the larger
    ``tie_break`` value, then the code)."""
    floors = {k: int(q // 1) for k, q in quotas.items()}
    left = total - sum(floors.values())
    tie_break = tie_break or {}
    order = sorted(quotas, key=lambda k: (-(quotas[k] - floors[k]), -tie_break.get(k, 0), k))
    for k in order[:left]:
        floors[k] += 1
    return floors


def distribution_keys(states: list[dict], weights: Mapping[str, Fraction], cap: Fraction | None = None,
                      ) -> tuple[dict[str, Fraction], dict[str, Fraction] | None, dict[str, dict[str, Fraction]]]:
    """``(keys, size-only keys or None, components)``: each State's key under ``weights``,
    with the correctives' effect capped at ``cap`` when given (see the module docstring)."""
    total_w = sum(weights.get(c, Fraction(0)) for c in CRITERIA)
    if total_w <= 0:
        raise ValidationFailed({"weights": "Give at least one criterion a weight above zero."})
    if cap is not None and not 0 <= cap <= 1:
        raise ValidationFailed({"cap": "The cap is a fraction from 0 to 1."})
    comp = components(states)
    codes = [s["code"] for s in states]
    keys = {code: sum(weights.get(c, Fraction(0)) * comp[c][code] for c in CRITERIA) / total_w for code in codes}
    size_w = sum(weights.get(c, Fraction(0)) for c in SIZE_CRITERIA)
    base = None
    if size_w > 0:
        base = {code: sum(weights.get(c, Fraction(0)) * comp[c][code] for c in SIZE_CRITERIA) / size_w
                for code in codes}
    if cap is not None and base is not None and any(weights.get(c, 0) for c in CORRECTIVES):
        clipped = {code: min(max(keys[code], (1 - cap) * base[code]), (1 + cap) * base[code]) for code in codes}
        total = sum(clipped.values())
        keys = {code: k / total for code, k in clipped.items()} if total else keys
    return keys, base, comp


def fair_shares(states: Iterable[dict], caseload: int, weights: Mapping[str, Fraction], *,
                cap: Fraction | None = None) -> list[FairShare]:
    """Each State's fair share of ``caseload`` places under the key ``weights`` (correctives
    capped at ``cap`` if given; see the module docstring), largest first. ``states`` are
    reference-data dicts (``code``, ``name`` and the indicators). Refuses a negative or huge
    caseload, an empty list of States and weights that are all zero."""
    states = list(states)
    if isinstance(caseload, bool) or not isinstance(caseload, int) or not 0 <= caseload <= MAX_CASELOAD:
        raise ValidationFailed({"caseload": f"Must be a whole number from 0 to {MAX_CASELOAD:,}."})
    if not states:
        raise ValidationFailed({"states": "Choose at least one participating State."})
    keys, base, comp = distribution_keys(states, weights, cap)
    quotas = {code: k * caseload for code, k in keys.items()}
    shares = largest_remainder(quotas, caseload, keys)
    out = [FairShare(code=s["code"], name=s["name"], key=keys[s["code"]], quota=quotas[s["code"]],
                     share=shares[s["code"]], components={c: comp[c][s["code"]] for c in CRITERIA},
                     base=base[s["code"]] if base is not None else None)
           for s in states]
    return sorted(out, key=lambda f: (-f.key, f.code))


def preset_shares(states: Iterable[dict], caseload: int, preset: str) -> list[FairShare]:
    """:func:`fair_shares` under a preset, with the preset's cap."""
    return fair_shares(states, caseload, resolve_weights(preset), cap=PRESET_CAPS.get(preset))
