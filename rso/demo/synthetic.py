"""Deterministic synthetic caseload for demos, load tests and duplicate-detection tests.

Nothing here is a real person's data: names are drawn independently from pools of common
names, dates, document and phone numbers are random. The caseloads are the region's main
ones (Rohingya; Afghan Hazara, Pashtun and Tajik; Sri Lankan Tamil; Iranian; Somali; Iraqi;
Pakistani), with household shapes, arrival modes and specific needs at plausible rates.

* :func:`generate_households` yields one plain dict per household; :func:`generate_manifest_rows`
  yields one flat row per person, as a mass-influx manifest (CSV) would hold.
* Same arguments, same output (a private ``random.Random(seed)``; nothing depends on the clock
  or on hash seeds).
* Streaming at constant memory: only the open boat incidents and a small ring of recent
  principals (for deliberate re-registrations) are kept, whatever ``n_persons`` is.
* About 1% of households re-register a recent principal under a variant spelling, a shifted
  or estimated date of birth, at another office: ``duplicate_of`` names the original
  household so duplicate detection can be scored.
"""
from __future__ import annotations

import csv
import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO

from rso.demo import names as N
from rso.reference import loader

#: arrivals fall in this window (fixed: output must not depend on the day it runs)
ARRIVAL_FIRST = date(2015, 1, 1)
ARRIVAL_LAST = date(2025, 6, 30)
#: share of households that re-register a recent principal (see ``duplicate_of``)
DUPLICATE_RATE = 0.01

_TABLE = 1000  # resolution of the weighted lookup tables

# specific-need codes (fixtures/specific_needs.yaml)
UASC = "unaccompanied_separated_child"
CHILD_AT_RISK = "child_at_risk"
WOMAN_AT_RISK = "woman_at_risk"
TORTURE = "survivor_violence_torture"
MEDICAL = "serious_medical_condition"
DISABILITY = "disability"
OLDER_AT_RISK = "older_person_at_risk"
TRAFFICKING = "victim_of_trafficking"
SINGLE_PARENT = "single_parent"
PROTECTION = "legal_physical_protection"

#: needs that belong to the person, not to the household's shape
_PERSONAL_NEEDS = frozenset(
    {WOMAN_AT_RISK, TORTURE, MEDICAL, DISABILITY, OLDER_AT_RISK, TRAFFICKING, PROTECTION}
)


def _table(weights: dict | Iterable[tuple[object, float]]) -> tuple:
    """A lookup table: ``table[int(random() * len(table))]`` draws by weight, fast."""
    items = list(weights.items()) if isinstance(weights, dict) else list(weights)
    items = [(k, float(w)) for k, w in items if w > 0]
    if not items:
        raise ValueError("no positive weight")
    total = sum(w for _, w in items)
    out: list = []
    acc = 0.0
    for k, w in items:
        acc += w
        out.extend([k] * (round(acc / total * _TABLE) - len(out)))
    # exactly _TABLE long whatever the rounding: the hot loop indexes with int(random() * _TABLE)
    out.extend([items[-1][0]] * (_TABLE - len(out)))
    return tuple(out[:_TABLE])


def _name_table(pool: tuple[N.NameEntry, ...], skew: float = 0.8) -> tuple:
    """Zipf-like frequencies: the first names of a pool are the most common."""
    return _table([(entry, 1.0 / (rank + 1) ** skew) for rank, entry in enumerate(pool)])


@dataclass(frozen=True)
class Subgroup:
    ethnicity: str
    languages: tuple[str, ...]
    #: further languages spoken by persons aged 12 or more: (code, probability)
    extra: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Caseload:
    key: str
    weight: float
    origin: str
    #: nationality -> weight (Rohingya: mostly stateless)
    nationality: dict
    subgroups: dict  # Subgroup -> weight
    male: tuple
    female: tuple
    #: family-name pools; None where the family name is the father's given name
    family: tuple | None
    female_family: tuple | None = None
    #: shared: one family name; patronymic: father's given name; individual: each their own
    family_mode: str = "shared"
    #: probability a wife is registered under her husband's family (or given) name
    wife_takes: float = 0.0
    #: probability a household's record carries the native-script form
    native: float = 0.0
    #: Rohingya: share of persons registered under a Burmese name (Myanmar script)
    burmese: float = 0.0
    composition: dict = None  # type: ignore[assignment]
    #: children per family: 1 + a geometric draw with this continuation probability
    child_continue: float = 0.55
    single_male: float = 0.8
    modes: dict = None  # type: ignore[assignment]
    offices: dict = None  # type: ignore[assignment]
    #: sea: ((departure point, country), weight); air: (country, weight)
    departures: dict = None  # type: ignore[assignment]
    #: where boats of this caseload land (office -> weight); default: its offices on a coast
    sea_offices: dict | None = None
    #: office States reached over land (None: any with a known land crossing)
    land_states: tuple[str, ...] | None = None
    aboard: tuple[int, int] = (20, 120)
    rescue: float = 0.4
    dob_estimated: float = 0.1
    torture: float = 0.06
    trafficking: float = 0.01
    protection: float = 0.02
    documents: tuple = ()  # (min_age, probability, type, label, issuing country, pattern)


#: boats from Indonesia towards Australia: landed there or intercepted and brought back
OCEANIA_BOUND = {"AUS-DRW": 60, "AUS-CBR": 10, "IDN-JKT": 20, "IDN-MKS": 10}

CASELOADS: tuple[Caseload, ...] = (
    Caseload(
        key="rohingya", weight=30, origin="MMR", nationality={"XXA": 90, "MMR": 10},
        subgroups={Subgroup("Rohingya", ("rhg",), (("mya", 0.15), ("ctg", 0.12), ("msa", 0.06))): 1},
        male=N.ROHINGYA_MALE, female=N.ROHINGYA_FEMALE,
        family=N.ROHINGYA_SECOND_MALE, female_family=N.ROHINGYA_SECOND_FEMALE,
        family_mode="individual", native=0.8, burmese=0.08,
        composition={"family": 44, "single_adult": 18, "single_parent": 16, "couple": 8, "uasc": 7,
                     "extended": 7},
        child_continue=0.6, single_male=0.7,
        modes={"sea": 70, "land": 25, "air": 5},
        offices={"IDN-ACH": 22, "IDN-MDN": 18, "MYS-KUL": 22, "MYS-PEN": 10, "THA-RNG": 10,
                 "BGD-CXB": 25, "THA-BKK": 4, "IDN-JKT": 3},
        departures={"sea": ((("Cox's Bazar", "BGD"), 50), (("Teknaf", "BGD"), 25), (("Sittwe", "MMR"), 15),
                            (("Maungdaw", "MMR"), 10)),
                    "air": (("BGD", 60), ("MYS", 40))},
        sea_offices={"IDN-ACH": 30, "IDN-MDN": 15, "MYS-PEN": 15, "MYS-KUL": 5, "THA-RNG": 20, "BGD-CXB": 15},
        land_states=("BGD", "THA", "MYS"),
        aboard=(40, 300), rescue=0.6, dob_estimated=0.6, torture=0.1, trafficking=0.06, protection=0.02,
        documents=((12, 0.25, "refugee_id", "Bangladesh registration smart card", "BGD", "###########"),
                   (18, 0.03, "national_id", "National Verification Card", "MMR", "NVC-########")),
    ),
    Caseload(
        key="afghan_hazara", weight=16, origin="AFG", nationality={"AFG": 1},
        subgroups={Subgroup("Hazara", ("haz",), (("prs", 0.7), ("fas", 0.1), ("eng", 0.08))): 1},
        male=N.HAZARA_MALE, female=N.HAZARA_FEMALE, family=N.HAZARA_FAMILY,
        family_mode="shared", wife_takes=0.3, native=0.6,
        composition={"single_adult": 30, "family": 33, "single_parent": 9, "uasc": 12, "couple": 8,
                     "extended": 8},
        single_male=0.85,
        modes={"air": 55, "land": 30, "sea": 15},
        offices={"IDN-JKT": 25, "IDN-MDN": 10, "IDN-MKS": 8, "MYS-KUL": 8, "PAK-QTA": 15, "PAK-ISB": 10,
                 "THA-BKK": 6, "AUS-DRW": 4, "AUS-CBR": 2},
        departures={"sea": ((("Pelabuhan Ratu", "IDN"), 40), (("Cidaun", "IDN"), 30),
                            (("Kupang", "IDN"), 30)),
                    "air": (("PAK", 40), ("IRN", 30), ("ARE", 20), ("AFG", 10))},
        sea_offices=OCEANIA_BOUND,
        land_states=("PAK",),
        aboard=(30, 150), dob_estimated=0.4, torture=0.11, protection=0.03,
        documents=((16, 0.45, "national_id", "Tazkira", "AFG", "####-####-#####"),
                   (18, 0.12, "passport", "", "AFG", "P########")),
    ),
    Caseload(
        key="afghan_pashtun", weight=5, origin="AFG", nationality={"AFG": 1},
        subgroups={Subgroup("Pashtun", ("pus",), (("prs", 0.5), ("urd", 0.15), ("eng", 0.05))): 1},
        male=N.PASHTUN_MALE, female=N.PASHTUN_FEMALE, family=N.PASHTUN_FAMILY,
        family_mode="shared", wife_takes=0.2, native=0.6,
        composition={"single_adult": 48, "family": 25, "uasc": 12, "couple": 6, "single_parent": 4,
                     "extended": 5},
        single_male=0.92,
        modes={"air": 55, "land": 40, "sea": 5},
        offices={"IDN-JKT": 25, "MYS-KUL": 10, "PAK-ISB": 30, "PAK-QTA": 10, "THA-BKK": 8, "IDN-MDN": 5},
        departures={"sea": ((("Pelabuhan Ratu", "IDN"), 1),),
                    "air": (("PAK", 40), ("ARE", 40), ("AFG", 20))},
        sea_offices=OCEANIA_BOUND,
        land_states=("PAK",),
        aboard=(30, 120), dob_estimated=0.4, torture=0.06, protection=0.03,
        documents=((16, 0.45, "national_id", "Tazkira", "AFG", "####-####-#####"),
                   (18, 0.15, "passport", "", "AFG", "P########")),
    ),
    Caseload(
        key="afghan_tajik", weight=5, origin="AFG", nationality={"AFG": 1},
        subgroups={Subgroup("Tajik", ("prs",), (("pus", 0.2), ("eng", 0.12))): 1},
        male=N.TAJIK_MALE, female=N.TAJIK_FEMALE, family=N.TAJIK_FAMILY,
        family_mode="shared", wife_takes=0.3, native=0.6,
        composition={"single_adult": 35, "family": 35, "couple": 10, "uasc": 7, "single_parent": 7,
                     "extended": 6},
        modes={"air": 70, "land": 25, "sea": 5},
        offices={"IDN-JKT": 30, "MYS-KUL": 15, "PAK-ISB": 25, "THA-BKK": 10, "IDN-MDN": 5, "AUS-CBR": 3},
        departures={"sea": ((("Pelabuhan Ratu", "IDN"), 1),),
                    "air": (("PAK", 30), ("ARE", 40), ("AFG", 20), ("IRN", 10))},
        sea_offices=OCEANIA_BOUND,
        land_states=("PAK",),
        aboard=(30, 120), dob_estimated=0.3, torture=0.06, protection=0.03,
        documents=((16, 0.5, "national_id", "Tazkira", "AFG", "####-####-#####"),
                   (18, 0.25, "passport", "", "AFG", "P########")),
    ),
    Caseload(
        key="tamil", weight=8, origin="LKA", nationality={"LKA": 1},
        subgroups={Subgroup("Tamil", ("tam",), (("eng", 0.35), ("sin", 0.2))): 1},
        male=N.TAMIL_MALE, female=N.TAMIL_FEMALE, family=None,
        family_mode="patronymic", wife_takes=0.6, native=0.5,
        composition={"single_adult": 35, "family": 40, "couple": 10, "single_parent": 8, "extended": 5,
                     "uasc": 2},
        child_continue=0.4,
        modes={"sea": 45, "air": 55},
        offices={"AUS-DRW": 20, "AUS-CBR": 5, "MYS-KUL": 20, "THA-BKK": 10, "IDN-JKT": 8, "IDN-MDN": 4,
                 "LKA-CMB": 10, "NZL-WLG": 2},
        departures={"sea": ((("Negombo", "LKA"), 35), (("Batticaloa", "LKA"), 25), (("Chilaw", "LKA"), 20),
                            (("Trincomalee", "LKA"), 20)),
                    "air": (("LKA", 70), ("IND", 30))},
        sea_offices={"AUS-DRW": 55, "AUS-CBR": 10, "IDN-MDN": 10, "LKA-CMB": 20, "MYS-KUL": 5},
        aboard=(20, 150), rescue=0.3, dob_estimated=0.05, torture=0.15, protection=0.04,
        documents=((16, 0.6, "national_id", "National Identity Card", "LKA", "#########V"),
                   (18, 0.45, "passport", "", "LKA", "N#######"),
                   (0, 0.3, "birth_certificate", "", "LKA", "####/####")),
    ),
    Caseload(
        key="iranian", weight=6, origin="IRN", nationality={"IRN": 1},
        subgroups={Subgroup("Persian", ("fas",), (("eng", 0.35),)): 60,
                   Subgroup("Kurdish", ("ckb",), (("fas", 0.85), ("eng", 0.2))): 20,
                   Subgroup("Azerbaijani", ("azb",), (("fas", 0.9), ("eng", 0.2))): 15,
                   Subgroup("Arab", ("ara",), (("fas", 0.85),)): 5},
        male=N.IRANIAN_MALE, female=N.IRANIAN_FEMALE, family=N.IRANIAN_FAMILY,
        family_mode="shared", wife_takes=0.0, native=0.7,
        composition={"single_adult": 40, "couple": 20, "family": 30, "single_parent": 7, "extended": 3},
        child_continue=0.3, single_male=0.7,
        modes={"air": 85, "sea": 10, "land": 5},
        offices={"IDN-JKT": 20, "MYS-KUL": 15, "THA-BKK": 15, "AUS-CBR": 6, "AUS-DRW": 4, "PHL-MNL": 3,
                 "JPN-TYO": 3, "KOR-SEL": 3},
        departures={"sea": ((("Pelabuhan Ratu", "IDN"), 50), (("Kupang", "IDN"), 50)),
                    "air": (("IRN", 50), ("TUR", 25), ("ARE", 25))},
        sea_offices=OCEANIA_BOUND,
        land_states=("MYS", "THA"), dob_estimated=0.03, torture=0.08, protection=0.05,
        documents=((18, 0.55, "passport", "", "IRN", "A########"),
                   (16, 0.35, "national_id", "Kart-e Melli", "IRN", "##########")),
    ),
    Caseload(
        key="somali", weight=6, origin="SOM", nationality={"SOM": 1},
        subgroups={Subgroup("Somali", ("som",), (("ara", 0.2), ("eng", 0.25))): 1},
        male=N.SOMALI_MALE, female=N.SOMALI_FEMALE, family=None,
        family_mode="patronymic", wife_takes=0.0, native=0.0,
        composition={"single_adult": 35, "family": 30, "single_parent": 20, "uasc": 7, "couple": 5,
                     "extended": 3},
        child_continue=0.6, single_male=0.6,
        modes={"air": 90, "sea": 5, "land": 5},
        offices={"MYS-KUL": 30, "IDN-JKT": 25, "THA-BKK": 15, "IDN-MDN": 5},
        departures={"sea": ((("Port Dickson", "MYS"), 1),),
                    "air": (("KEN", 35), ("ETH", 25), ("ARE", 25), ("SOM", 15))},
        sea_offices={"IDN-MDN": 1},
        land_states=("MYS", "THA"), dob_estimated=0.45, torture=0.07, trafficking=0.02, protection=0.02,
        documents=((18, 0.12, "passport", "", "SOM", "P########"),),
    ),
    Caseload(
        key="iraqi", weight=6, origin="IRQ", nationality={"IRQ": 1},
        subgroups={Subgroup("Arab", ("ara",), (("eng", 0.2),)): 80,
                   Subgroup("Kurdish", ("ckb",), (("ara", 0.7), ("kmr", 0.2))): 15,
                   Subgroup("Turkmen", ("tur",), (("ara", 0.8),)): 5},
        male=N.IRAQI_MALE, female=N.IRAQI_FEMALE, family=N.IRAQI_FAMILY,
        family_mode="shared", wife_takes=0.0, native=0.6,
        composition={"family": 45, "single_adult": 25, "couple": 12, "single_parent": 10, "extended": 8},
        child_continue=0.5,
        modes={"air": 80, "sea": 15, "land": 5},
        offices={"IDN-JKT": 20, "MYS-KUL": 20, "THA-BKK": 10, "AUS-CBR": 5, "IDN-MDN": 3},
        departures={"sea": ((("Pelabuhan Ratu", "IDN"), 50), (("Cidaun", "IDN"), 50)),
                    "air": (("IRQ", 40), ("TUR", 25), ("JOR", 20), ("ARE", 15))},
        sea_offices=OCEANIA_BOUND,
        land_states=("MYS", "THA"), dob_estimated=0.1, torture=0.09, protection=0.03,
        documents=((18, 0.4, "passport", "", "IRQ", "A########"),
                   (12, 0.4, "national_id", "Unified National Card", "IRQ", "############")),
    ),
    Caseload(
        key="pakistani", weight=7, origin="PAK", nationality={"PAK": 1},
        subgroups={Subgroup("Punjabi", ("pnb",), (("urd", 0.9), ("eng", 0.3))): 55,
                   Subgroup("Pashtun", ("pus",), (("urd", 0.7),)): 15,
                   Subgroup("Hazara", ("haz",), (("urd", 0.8), ("prs", 0.3))): 15,
                   Subgroup("Sindhi", ("snd",), (("urd", 0.8),)): 10,
                   Subgroup("Baloch", ("bal",), (("urd", 0.7),)): 5},
        male=N.PAKISTANI_MALE, female=N.PAKISTANI_FEMALE, family=N.PAKISTANI_FAMILY,
        family_mode="shared", wife_takes=0.6, native=0.5,
        composition={"family": 45, "single_adult": 25, "couple": 15, "single_parent": 8, "extended": 7},
        child_continue=0.5,
        modes={"air": 95, "land": 5},
        offices={"THA-BKK": 35, "MYS-KUL": 25, "IDN-JKT": 10, "LKA-CMB": 15, "PHL-MNL": 3},
        departures={"sea": ((("Port Dickson", "MYS"), 1),),
                    "air": (("PAK", 80), ("ARE", 20))},
        sea_offices={"IDN-MDN": 1},
        land_states=("MYS", "THA"), dob_estimated=0.12, torture=0.06, protection=0.06,
        documents=((18, 0.6, "passport", "", "PAK", "AA#######"),
                   (18, 0.7, "national_id", "CNIC", "PAK", "#####-#######-#")),
    ),
)

#: where people land, cross or fly in, per office State (generator-only geography)
ENTRY_POINTS: dict[str, dict[str, tuple[str, ...]]] = {
    "IDN": {"sea": ("Lhokseumawe, Aceh", "Pidie, Aceh", "Sabang, Aceh", "East Aceh",
                    "Tanjung Balai, North Sumatra", "Kupang, East Nusa Tenggara"),
            "air": ("Soekarno-Hatta International Airport", "Kualanamu International Airport",
                    "Ngurah Rai International Airport")},
    "MYS": {"sea": ("Langkawi, Kedah", "Penang", "Port Klang, Selangor"),
            "air": ("Kuala Lumpur International Airport",),
            "land": ("Bukit Kayu Hitam, Kedah", "Padang Besar, Perlis", "Rantau Panjang, Kelantan")},
    "THA": {"sea": ("Satun", "Ranong", "Ko Lipe, Satun", "Phang Nga"),
            "air": ("Suvarnabhumi Airport", "Don Mueang Airport", "Phuket International Airport"),
            "land": ("Mae Sot, Tak", "Ranong checkpoint", "Sadao, Songkhla")},
    "AUS": {"sea": ("Christmas Island", "Ashmore Reef", "Cocos (Keeling) Islands", "Darwin"),
            "air": ("Sydney Airport", "Melbourne Airport", "Perth Airport")},
    "BGD": {"sea": ("Teknaf, Cox's Bazar", "Shah Porir Dwip"),
            "air": ("Hazrat Shahjalal International Airport",),
            "land": ("Teknaf, Cox's Bazar", "Ukhia, Cox's Bazar", "Ghumdhum, Bandarban")},
    "LKA": {"sea": ("Kankesanthurai, Jaffna", "Trincomalee"),
            "air": ("Bandaranaike International Airport",)},
    "PAK": {"air": ("Islamabad International Airport", "Allama Iqbal International Airport",
                    "Jinnah International Airport"),
            "land": ("Torkham", "Chaman", "Taftan")},
    "NZL": {"air": ("Auckland Airport",)},
    "PHL": {"sea": ("Puerto Princesa, Palawan",), "air": ("Ninoy Aquino International Airport",)},
    "KHM": {"air": ("Phnom Penh International Airport",), "land": ("Poipet",)},
    "VNM": {"air": ("Noi Bai International Airport",), "land": ("Mong Cai",)},
    "JPN": {"air": ("Narita International Airport", "Haneda Airport")},
    "KOR": {"air": ("Incheon International Airport",)},
    "PNG": {"sea": ("Manus Island",), "air": ("Jacksons International Airport",), "land": ("Wutung",)},
}

#: where a land arrival in an office State comes from
LAND_FROM: dict[str, tuple[str, ...]] = {
    "PAK": ("AFG",), "BGD": ("MMR",), "THA": ("MMR", "MYS", "KHM"), "MYS": ("THA",), "KHM": ("THA",),
    "VNM": ("KHM",), "PNG": ("IDN",),
}

#: mobile numbers: (prefix, digits after it), per office State
PHONES: dict[str, tuple[str, int]] = {
    "IDN": ("+628", 10), "MYS": ("+601", 8), "THA": ("+668", 8), "AUS": ("+614", 8),
    "BGD": ("+8801", 9), "LKA": ("+947", 8), "PAK": ("+923", 9), "NZL": ("+642", 8),
    "PHL": ("+639", 9), "KHM": ("+8551", 8), "VNM": ("+849", 8), "JPN": ("+8190", 8),
    "KOR": ("+8210", 8), "PNG": ("+6757", 7),
}

VESSELS: dict[str, tuple[str, ...]] = {
    "IDN": ("KM Harapan Baru", "KM Sinar Laut", "KM Bintang Timur", "KM Mutiara Jaya", "KM Samudra Indah"),
    "LKA": ("Nimali", "Sathya", "Kalpana", "Sea Bird", "Anjali"),
    "MYS": ("Bintang Pagi", "Seri Pantai"),
    "BGD": ("Sonali Tori", "Nur Jahaj"),
    "MMR": ("Shwe Pyi",),
}


# --- the generator ---------------------------------------------------------------------------


class _Model:
    """Lookup tables built once per call from the caseloads and the fixture offices."""

    def __init__(self, offices: list[str] | None, caseloads: list[str] | None, sea_only: bool):
        fixture_offices = {o["code"]: o for o in loader.offices()}
        if offices is None:
            allowed = [c for c in fixture_offices if not c.startswith("RSO-")]
        else:
            unknown = sorted(set(offices) - set(fixture_offices))
            if unknown:
                raise ValueError(f"unknown office code(s): {', '.join(unknown)}")
            allowed = list(dict.fromkeys(offices))
            if not allowed:
                raise ValueError("offices must name at least one office")
        self.state_of = {c: fixture_offices[c]["state_code"] for c in allowed}
        sea_capable = [c for c in allowed if "sea" in ENTRY_POINTS.get(self.state_of[c], {})]
        land_capable = [c for c in allowed if "land" in ENTRY_POINTS.get(self.state_of[c], {})]

        chosen = CASELOADS
        if caseloads is not None:
            known = {c.key for c in CASELOADS}
            unknown = sorted(set(caseloads) - known)
            if unknown:
                raise ValueError(
                    f"unknown caseload(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                )
            chosen = tuple(c for c in CASELOADS if c.key in caseloads)
            if not chosen:
                raise ValueError("caseloads must name at least one caseload")
        self.caseloads = _table(
            {self._prepare(c, allowed, sea_capable, land_capable, sea_only): c.weight for c in chosen}
        )

    def _prepare(self, c: Caseload, allowed: list[str], sea_capable: list[str], land_capable: list[str],
                 sea_only: bool) -> _Prepared:
        weights = {o: w for o, w in c.offices.items() if o in allowed}
        office_table = _table(weights) if weights else tuple(allowed)
        sea_weights = {o: w for o, w in (c.sea_offices or weights).items() if o in sea_capable}
        if not sea_weights:
            sea_weights = {o: w for o, w in weights.items() if o in sea_capable}
        # boats land where a coast is known; failing that, at any allowed office
        sea_office_table = _table(sea_weights) if sea_weights else (tuple(sea_capable) or office_table)
        # land arrivals only where the caseload plausibly crosses a land border; else they fly
        land_weights = {o: w for o, w in weights.items()
                        if o in land_capable and (c.land_states is None or self.state_of[o] in c.land_states)}
        land_office_table = _table(land_weights) if land_weights else ()
        modes = {"sea": 1} if sea_only else c.modes
        return _Prepared(c, office_table, sea_office_table, land_office_table, _table(modes), self.state_of)


class _Prepared:
    """One caseload with its lookup tables (plain attributes: the hot loop reads them)."""

    def __init__(self, c: Caseload, office_table: tuple, sea_office_table: tuple, land_office_table: tuple,
                 mode_table: tuple, state_of: dict[str, str]):
        self.c = c
        self.key = c.key
        self.office_table = office_table
        self.sea_office_table = sea_office_table
        self.land_office_table = land_office_table
        self.mode_table = mode_table
        self.state_of = state_of
        self.nationality = _table(c.nationality)
        self.subgroups = _table(c.subgroups)
        self.composition = _table(c.composition)
        self.male = _name_table(c.male)
        self.female = _name_table(c.female)
        self.family = _name_table(c.family) if c.family else None
        self.female_family = _name_table(c.female_family) if c.female_family else None
        self.burmese_male = _name_table(N.BURMESE_MALE)
        self.burmese_female = _name_table(N.BURMESE_FEMALE)
        self.burmese_second = _name_table(N.BURMESE_SECOND)
        self.departures = {m: _table(v) for m, v in c.departures.items()}
        adult_docs, child_docs = [], []
        for min_age, p, kind, label, country, pattern in c.documents:
            (child_docs if min_age < 12 else adult_docs).append((min_age, p, kind, label, country, pattern))
        self.adult_docs = tuple(adult_docs + child_docs)
        self.child_docs = tuple(child_docs)


_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


class _Run:
    def __init__(self, model: _Model, seed: int):
        self.model = model
        self.seed = seed
        self.rng = random.Random(seed)
        self.open_incidents: dict[str, list] = {}  # caseload -> [incident, places left, office]
        self.incident_count = 0
        self.recent: deque = deque(maxlen=256)
        self.first = ARRIVAL_FIRST.toordinal()
        self.span = ARRIVAL_LAST.toordinal() - self.first + 1

    # -- small helpers ------------------------------------------------------------------------

    def _fill(self, pattern: str) -> str:
        rnd = self.rng.random
        out = []
        for ch in pattern:
            if ch == "#":
                out.append("0123456789"[int(rnd() * 10)])
            elif ch == "A":
                out.append(_LETTERS[int(rnd() * 23)])
            else:
                out.append(ch)
        return "".join(out)

    def _phone(self, state: str) -> str:
        prefix, digits = PHONES.get(state, ("+66", 9))
        return f"{prefix}{int(self.rng.random() * 10 ** digits):0{digits}d}"

    def _spell(self, entry: N.NameEntry) -> str:
        variants = entry[0]
        if len(variants) == 1 or self.rng.random() < 0.7:
            return variants[0]
        return variants[int(self.rng.random() * len(variants))]

    def _incident(self, p: _Prepared, size: int) -> tuple[dict, str]:
        """The boat this household came on (open one of its caseload, or a new one) and its office."""
        slot = self.open_incidents.get(p.key)
        if slot is not None and slot[1] >= size:
            slot[1] -= size
            return slot[0], slot[2]
        rnd = self.rng.random
        office = p.sea_office_table[int(rnd() * len(p.sea_office_table))]
        state = p.state_of[office]
        places = ENTRY_POINTS.get(state, {}).get("sea") or (f"Coast near {office}",)
        dep_table = p.departures["sea"]
        departure_point, departure_country = dep_table[int(rnd() * len(dep_table))]
        lo, hi = p.c.aboard
        aboard = lo + int((rnd() + rnd()) / 2 * (hi - lo))
        vessels = VESSELS.get(departure_country, ())
        vessel = vessels[int(rnd() * len(vessels))] if vessels and rnd() < 0.35 else None
        self.incident_count += 1
        incident = {
            "ref": f"INC-{self.seed}-{self.incident_count:05d}",
            "date": date.fromordinal(self.first + int(rnd() * self.span)),
            "vessel_name": vessel,
            "departure_point": departure_point,
            "departure_country": departure_country,
            "disembarkation_point": places[int(rnd() * len(places))],
            "disembarkation_state": state,
            "number_aboard": aboard,
            "rescue_at_sea": rnd() < p.c.rescue,
        }
        self.open_incidents[p.key] = [incident, max(aboard - size, 0), office]
        return incident, office

    # -- households ---------------------------------------------------------------------------

    def households(self, n_persons: int) -> Iterator[dict]:
        remaining = n_persons
        number = 0
        rnd = self.rng.random
        caseloads = self.model.caseloads
        n_caseloads = len(caseloads)
        while remaining > 0:
            number += 1
            ref = f"HH-{self.seed}-{number:07d}"
            if self.recent and rnd() < DUPLICATE_RATE:
                household = self._duplicate(ref)
            else:
                household = self._household(ref, caseloads[int(rnd() * n_caseloads)], remaining)
            remaining -= len(household["members"])
            yield household

    def _composition(self, p: _Prepared, cap: int) -> list[tuple[str, str, int]]:
        """(relationship, sex, age in completed years) per member, principal first."""
        rnd = self.rng.random
        c = p.c
        kind = p.composition[int(rnd() * _TABLE)]

        def adult_age() -> int:
            return 18 + int(rnd() * 15) + int(rnd() * rnd() * 35)

        if kind == "uasc":
            members = [("principal", "M" if rnd() < 0.8 else "F", 12 + int(rnd() * 6))]
            for _ in range(int(rnd() * rnd() * 3)):
                members.append(("sibling", "M" if rnd() < 0.5 else "F", 6 + int(rnd() * 12)))
            return members[:cap]
        if kind == "single_adult":
            return [("principal", "M" if rnd() < c.single_male else "F", adult_age())]
        if kind == "single_parent":
            sex = "F" if rnd() < 0.85 else "M"
            age = max(adult_age(), 19)
            members = [("principal", sex, age)]
            mother_age = age
        else:
            age = adult_age()
            principal_male = rnd() < 0.92
            # wives are a few years younger, some married under 18
            partner_age = max(16, age - int(rnd() * 9)) if principal_male else age + int(rnd() * 6)
            members = [("principal", "M" if principal_male else "F", age),
                       ("spouse", "F" if principal_male else "M", partner_age)]
            mother_age = partner_age if principal_male else age
            if kind == "couple":
                return members[:cap]
        # children: 1 + geometric, aged so the mother was at least 16 at birth
        max_child = min(17, mother_age - 16)
        n_children = 1
        while n_children < 8 and rnd() < c.child_continue:
            n_children += 1
        # siblings at least a year apart, except twins (who share a date of birth, see below)
        previous = None
        for age_child in sorted((int(rnd() * (max_child + 1)) for _ in range(n_children)), reverse=True):
            if previous is not None:
                age_child = previous if rnd() < 0.03 else min(age_child, previous - 1)
            if age_child < 0:
                break
            members.append(("child", "M" if rnd() < 0.5 else "F", age_child))
            previous = age_child
        if kind == "extended":
            if rnd() < 0.6:
                parent_age = max(60 + int(rnd() * 21), age + 18 + int(rnd() * 10))
                members.append(("parent", "M" if rnd() < 0.4 else "F", parent_age))
            else:
                members.append(("sibling", "M" if rnd() < 0.5 else "F", 18 + int(rnd() * 12)))
        return members[:cap]

    def _household(self, ref: str, p: _Prepared, cap: int) -> dict:
        rnd = self.rng.random
        c = p.c
        shape = self._composition(p, cap)
        size = len(shape)

        # arrival
        mode = p.mode_table[int(rnd() * _TABLE)]
        incident = None
        if mode == "sea":
            incident, office = self._incident(p, size)
            arrival_ord = incident["date"].toordinal()
            entry_point = incident["disembarkation_point"]
            departure = incident["departure_country"]
            registration_ord = arrival_ord + int(rnd() * 15)
        else:
            if mode == "land" and not p.land_office_table:
                mode = "air"
            table = p.land_office_table if mode == "land" else p.office_table
            office = table[int(rnd() * len(table))]
            pool = ENTRY_POINTS.get(p.state_of[office], {}).get(mode) or (f"{mode} arrival",)
            entry_point = pool[int(rnd() * len(pool))]
            dep_table = LAND_FROM[p.state_of[office]] if mode == "land" else p.departures["air"]
            departure = dep_table[int(rnd() * len(dep_table))]
            arrival_ord = self.first + int(rnd() * self.span)
            registration_ord = arrival_ord + int(rnd() * rnd() * 180)
        state = p.state_of[office]
        arrival = date.fromordinal(arrival_ord)

        # who: nationality, ethnicity and languages are shared by the household
        nationality = p.nationality[int(rnd() * len(p.nationality))]
        sub = p.subgroups[int(rnd() * len(p.subgroups))]
        native = rnd() < c.native
        estimated_rate = c.dob_estimated
        household_estimated = rnd() < estimated_rate  # estimates come in households
        trafficking_rate = c.trafficking * (1.5 if mode == "sea" else 0.5)

        # family names: see Caseload.family_mode
        mode_family = c.family_mode
        male_pool, female_pool, family_pool = p.male, p.female, p.family
        spell = self._spell
        # where family names come from: a family-name pool, or fathers' given names
        surnames = male_pool if mode_family == "patronymic" else family_pool
        # the principal's family name (patronymic: the principal's father's given name)
        household_family = None if mode_family == "individual" else surnames[int(rnd() * _TABLE)]
        household_spelled = spell(household_family) if household_family else None
        father = None  # the children's family-name entry, once the father is known
        principal_entries = None

        members = []
        for relationship, sex, age in shape:
            # --- names
            burmese = c.burmese and rnd() < c.burmese
            if burmese:
                given_entry = (p.burmese_male if sex == "M" else p.burmese_female)[int(rnd() * _TABLE)]
                family_entry = p.burmese_second[int(rnd() * _TABLE)]
                family = spell(family_entry)
            else:
                if relationship == "parent" and sex == "M" and mode_family == "patronymic":
                    given_entry = household_family  # the principal's father gave the family name
                else:
                    given_entry = (male_pool if sex == "M" else female_pool)[int(rnd() * _TABLE)]
                if mode_family == "individual":
                    pool = p.female_family if sex == "F" and p.female_family else family_pool
                    family_entry = pool[int(rnd() * _TABLE)]
                    family = spell(family_entry)
                elif relationship in ("principal", "sibling") or (
                    relationship == "parent" and sex == "M" and mode_family == "shared"
                ):
                    family_entry = household_family
                    family = household_spelled if rnd() < 0.95 else spell(family_entry)
                elif relationship == "parent":
                    # patronymic: the grandfather's given name; shared: the mother's own name
                    family_entry = surnames[int(rnd() * _TABLE)]
                    family = spell(family_entry)
                elif relationship == "spouse":
                    if sex == "F" and rnd() < c.wife_takes:
                        family_entry = household_family if mode_family == "shared" else principal_entries[0]
                    else:
                        family_entry = surnames[int(rnd() * _TABLE)]
                    family = spell(family_entry)
                else:  # child
                    if father is None:  # a single mother: the absent father's name
                        father = surnames[int(rnd() * _TABLE)]
                    family_entry = father
                    family = household_spelled if family_entry is household_family else spell(family_entry)
            if relationship == "principal":
                principal_entries = (given_entry, family_entry)
            if sex == "M" and relationship in ("principal", "spouse"):
                father = family_entry if mode_family == "shared" else given_entry
            given = spell(given_entry)
            if native:
                given_native = given_entry[1]
                family_native = family_entry[1]
                if given_native is None or family_native is None:
                    given_native = family_native = None
            else:
                given_native = family_native = None

            # --- date of birth (completed years at arrival = age, always)
            if relationship == "child" and members and members[-1]["relationship"] == "child" and (
                shape[len(members) - 1][2] == age
            ):  # twins
                dob, estimated = members[-1]["date_of_birth"], members[-1]["dob_estimated"]
            elif household_estimated or rnd() < estimated_rate * 0.2:
                dob = date(arrival.year - age, 1, 1)
                estimated = True
            else:
                try:
                    hi = arrival.replace(year=arrival.year - age).toordinal()
                    lo = arrival.replace(year=arrival.year - age - 1).toordinal() + 1
                except ValueError:  # arrived on 29 February
                    hi = date(arrival.year - age, 2, 28).toordinal()
                    lo = date(arrival.year - age - 1, 3, 1).toordinal()
                dob = date.fromordinal(lo + int(rnd() * (hi - lo + 1)))
                estimated = False

            # --- specific needs
            needs = []
            child = age < 18
            if child:
                if relationship in ("principal", "sibling") and shape[0][2] < 18:
                    needs.append(UASC)
                    if rnd() < 0.2:
                        needs.append(CHILD_AT_RISK)
                elif rnd() < 0.025:
                    needs.append(CHILD_AT_RISK)
            else:
                if relationship == "principal":
                    if size > 1 and shape[1][0] == "child":
                        needs.append(SINGLE_PARENT)
                        if sex == "F" and rnd() < 0.3:
                            needs.append(WOMAN_AT_RISK)
                    elif size == 1 and sex == "F" and rnd() < 0.4:
                        needs.append(WOMAN_AT_RISK)
                    if rnd() < c.protection:
                        needs.append(PROTECTION)
                elif sex == "F" and rnd() < 0.02:
                    needs.append(WOMAN_AT_RISK)
                if rnd() < c.torture:
                    needs.append(TORTURE)
                if age >= 60 and rnd() < 0.35:
                    needs.append(OLDER_AT_RISK)
            if age >= 12 and rnd() < trafficking_rate:
                needs.append(TRAFFICKING)
            if rnd() < (0.15 if age >= 60 else 0.035):
                needs.append(MEDICAL)
            if rnd() < (0.08 if age >= 60 else 0.02):
                needs.append(DISABILITY)

            # --- languages
            languages = list(sub.languages)
            if age >= 12:
                for code, prob in sub.extra:
                    if rnd() < prob:
                        languages.append(code)

            # --- documents and phone
            documents = []
            for min_age, prob, kind, label, country, pattern in (p.adult_docs if age >= 12 else p.child_docs):
                if age >= min_age and rnd() < prob:
                    documents.append({"type": kind, "number": self._fill(pattern), "issuing_country": country,
                                      "label": label or None})
            phone = None
            if not child and rnd() < (0.55 if relationship == "principal" else 0.2):
                phone = self._phone(state)

            members.append({
                "relationship": relationship,
                "given_name": given,
                "family_name": family,
                "given_name_native": given_native,
                "family_name_native": family_native,
                "sex": sex,
                "date_of_birth": dob,
                "dob_estimated": estimated,
                "nationality": nationality,
                "country_of_origin": c.origin,
                "ethnicity": sub.ethnicity,
                "languages": languages,
                "specific_needs": needs,
                "documents": documents,
                "phone": phone,
            })

        # a copy: the caller may change what it was given
        self.recent.append((ref, p, principal_entries, dict(members[0]), arrival_ord))
        return {
            "ref": ref,
            "caseload": c.key,
            "office": office,
            "arrival": {
                "date": arrival,
                "mode": mode,
                "entry_point": entry_point,
                "country_of_departure": departure,
                "registration_date": date.fromordinal(registration_ord),
            },
            "incident": incident,
            "duplicate_of": None,
            "members": members,
        }

    def _duplicate(self, ref: str) -> dict:
        """Re-register a recent principal: variant spellings, maybe another office and date."""
        rng = self.rng
        rnd = rng.random
        original_ref, p, (given_entry, family_entry), principal, original_arrival = self.recent[
            int(rnd() * len(self.recent))
        ]
        office = p.office_table[int(rnd() * len(p.office_table))]
        state = p.state_of[office]
        arrival_ord = min(original_arrival + 1 + int(rnd() * 400), ARRIVAL_LAST.toordinal())
        arrival = date.fromordinal(arrival_ord)
        dob = principal["date_of_birth"]
        estimated = principal["dob_estimated"]
        r = rnd()
        if r < 0.2:
            dob, estimated = date(dob.year, 1, 1), True
        elif r < 0.3 and dob.day <= 12 and dob.day != dob.month:
            dob = date(dob.year, dob.day, dob.month)  # day and month swapped on entry
        elif r < 0.4:
            dob = date(dob.year - 1 if rnd() < 0.5 else dob.year + 1, 1, 1)
            estimated = True
        if dob > arrival:
            dob = date(arrival.year, 1, 1)
        given = self._spell(given_entry)
        family = self._spell(family_entry)
        if given == principal["given_name"] and len(given_entry[0]) > 1 and rnd() < 0.6:
            given = given_entry[0][1 + int(rnd() * (len(given_entry[0]) - 1))]
            if given == principal["given_name"]:
                given = given_entry[0][0]
        documents = [dict(d) for d in principal["documents"]] if rnd() < 0.4 else []
        phone = principal["phone"] if rnd() < 0.3 else (self._phone(state) if rnd() < 0.4 else None)
        # needs that still hold for this person alone, at the age of the new registration
        age = arrival.year - dob.year - ((dob.month, dob.day) > (arrival.month, arrival.day))
        needs = [n for n in principal["specific_needs"] if n in _PERSONAL_NEEDS
                 or (age < 18 and n in (UASC, CHILD_AT_RISK))]
        if age < 18 and UASC not in needs:
            needs.insert(0, UASC)
        member = dict(principal)
        member.update({
            "given_name": given,
            "family_name": family,
            "given_name_native": principal["given_name_native"] if rnd() < 0.5 else None,
            "family_name_native": principal["family_name_native"] if rnd() < 0.5 else None,
            "date_of_birth": dob,
            "dob_estimated": estimated,
            "languages": list(principal["languages"]),
            "specific_needs": needs,
            "documents": documents,
            "phone": phone,
        })
        if member["given_name_native"] is None or member["family_name_native"] is None:
            member["given_name_native"] = member["family_name_native"] = None
        points = ENTRY_POINTS.get(state, {}).get("air") or ("air arrival",)
        dep_table = p.departures["air"]
        return {
            "ref": ref,
            "caseload": p.key,
            "office": office,
            "arrival": {
                "date": arrival,
                "mode": "air",
                "entry_point": points[int(rnd() * len(points))],
                "country_of_departure": dep_table[int(rnd() * len(dep_table))],
                "registration_date": date.fromordinal(arrival_ord + int(rnd() * 60)),
            },
            "incident": None,
            "duplicate_of": original_ref,
            "members": [member],
        }


def generate_households(
    n_persons: int,
    seed: int = 1,
    offices: list[str] | None = None,
    *,
    caseloads: list[str] | None = None,
    sea_only: bool = False,
) -> Iterator[dict]:
    """Yield synthetic households until exactly ``n_persons`` persons were produced.

    Each household is ``{"ref", "caseload", "office", "arrival": {"date", "mode", "entry_point",
    "country_of_departure", "registration_date"}, "incident": {...} or None, "duplicate_of",
    "members": [...]}``; the first member is the principal. A member is ``{"relationship",
    "given_name", "family_name", "given_name_native", "family_name_native", "sex",
    "date_of_birth", "dob_estimated", "nationality", "country_of_origin", "ethnicity",
    "languages", "specific_needs", "documents": [{"type", "number", "issuing_country",
    "label"}], "phone"}``. Households of one boat share the same ``incident`` dict (do not
    mutate it). ``offices`` restricts the offices used (codes of fixtures/member_states.yaml;
    by default every office but the RSO's own); ``caseloads`` restricts the caseloads (keys of
    :data:`CASELOADS`); ``sea_only`` makes every household a boat arrival.

    Raises ``ValueError`` at once (not on the first ``next``) for a bad argument.
    """
    if not isinstance(n_persons, int) or isinstance(n_persons, bool) or n_persons < 0:
        raise ValueError("n_persons must be a whole number, 0 or more")
    run = _Run(_Model(offices, caseloads, sea_only), seed)
    return run.households(n_persons)


MANIFEST_COLUMNS: tuple[str, ...] = (
    "row", "household", "relationship", "given_name", "family_name", "given_name_native",
    "family_name_native", "sex", "date_of_birth", "dob_estimated", "nationality", "country_of_origin",
    "ethnicity", "languages", "specific_needs", "document_type", "document_number", "document_country",
    "phone", "office", "arrival_date", "arrival_mode", "entry_point", "incident", "vessel_name",
)


def generate_manifest_rows(
    n_persons: int,
    seed: int = 1,
    offices: list[str] | None = None,
    *,
    caseloads: list[str] | None = None,
    sea_only: bool = False,
) -> Iterator[dict[str, str]]:
    """One flat row of text per person (keys: :data:`MANIFEST_COLUMNS`), as in a manifest CSV.

    Dates are ISO 8601, ``dob_estimated`` is ``true``/``false``, lists are joined with ``;``,
    an absent value is ``""``; only the first document of a person is given. The
    ``household`` column holds the household ref; rows of one household follow each other,
    principal first. Same arguments as :func:`generate_households`, same persons.
    """
    households = generate_households(n_persons, seed, offices, caseloads=caseloads, sea_only=sea_only)

    def rows() -> Iterator[dict[str, str]]:
        row = 0
        for h in households:
            arrival = h["arrival"]
            incident = h["incident"]
            common = {
                "household": h["ref"],
                "office": h["office"],
                "arrival_date": arrival["date"].isoformat(),
                "arrival_mode": arrival["mode"],
                "entry_point": arrival["entry_point"],
                "incident": incident["ref"] if incident else "",
                "vessel_name": (incident["vessel_name"] or "") if incident else "",
            }
            for m in h["members"]:
                row += 1
                doc = m["documents"][0] if m["documents"] else None
                yield {
                    "row": str(row),
                    "household": common["household"],
                    "relationship": m["relationship"],
                    "given_name": m["given_name"],
                    "family_name": m["family_name"],
                    "given_name_native": m["given_name_native"] or "",
                    "family_name_native": m["family_name_native"] or "",
                    "sex": m["sex"],
                    "date_of_birth": m["date_of_birth"].isoformat(),
                    "dob_estimated": "true" if m["dob_estimated"] else "false",
                    "nationality": m["nationality"],
                    "country_of_origin": m["country_of_origin"],
                    "ethnicity": m["ethnicity"],
                    "languages": ";".join(m["languages"]),
                    "specific_needs": ";".join(m["specific_needs"]),
                    "document_type": doc["type"] if doc else "",
                    "document_number": doc["number"] if doc else "",
                    "document_country": doc["issuing_country"] if doc else "",
                    "phone": m["phone"] or "",
                    "office": common["office"],
                    "arrival_date": common["arrival_date"],
                    "arrival_mode": common["arrival_mode"],
                    "entry_point": common["entry_point"],
                    "incident": common["incident"],
                    "vessel_name": common["vessel_name"],
                }

    return rows()


def write_manifest_csv(fh: IO[str], n_persons: int, seed: int = 1, offices: list[str] | None = None,
                       **kwargs) -> int:
    """Write a manifest CSV (header + one row per person) to an open text file; returns the rows."""
    rows = generate_manifest_rows(n_persons, seed, offices, **kwargs)  # bad arguments fail here
    writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
