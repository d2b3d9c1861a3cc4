"""The bulk registration path writes exactly what register_case writes, one case at a time."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import date

import pytest
from sqlalchemy import delete, func, select

from rso.audit.models import AuditEvent
from rso.db import session_scope
from rso.errors import Conflict, ValidationFailed
from rso.reference.models import Office
from rso.registration import operations as ops
from rso.registration import validation as rules
from rso.registration.bulk import (
    BulkContext,
    bulk_baseline,
    bulk_register_synthetic,
    register_households_bulk,
)
from rso.registration.models import SEALED_PERSON_FIELDS, Case, CaseNumberCounter, DuplicateDecision, Person
from rso.registration.testing import case_payload, family_of_four, member
from rso.vault.crypto import count_vault_reads
from rso.vault.models import BlindIndexEntry, DataKey
from rso.vault.runtime import vault_for


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", office="IDN-JKT")


def _synthetic_payloads(n_persons: int, seed: int) -> list[dict]:
    from rso.demo.synthetic import generate_households
    from rso.registration.demo import payload_from_household

    return [payload_from_household(h) | {"office": "IDN-JKT"}
            for h in generate_households(n_persons, seed, ["IDN-JKT"])]


def _with_public_ids(payload: dict) -> dict:
    p = copy.deepcopy(payload)
    p["public_id"] = str(uuid.uuid4())
    for m in p["members"]:
        m["public_id"] = str(uuid.uuid4())
    return p


def _payloads() -> list[dict]:
    """Synthetic households (sea incidents, estimated dates, native-script names, documents,
    phones, needs) plus deliberate duplicates: inside the batch and of people registered before."""
    payloads = _synthetic_payloads(160, seed=5)
    twin = family_of_four("Hussaini", ("Abdul Rahman", "Zahra", "Ali", "Maryam"))
    payloads.append(case_payload(twin))
    variant = copy.deepcopy(twin)
    variant[0]["given_name"] = "Abdurrahman"  # another spelling, same passport and date of birth
    payloads.append(case_payload([variant[0]], arrival={"date": "2025-10-02", "mode": "air"}))
    again = member(given_name="Mohamed", family_name="Rahman", date_of_birth="1990-04-02", phone="+62 811 000 111")
    payloads.append(case_payload([again]))
    return [_with_public_ids(p) for p in payloads]


def _snapshot(s, vault, case_public_ids: list[str]) -> dict:
    """Everything registration stored for these cases, decrypted with the associated data
    register_case uses (a value sealed for another row or column would not open)."""
    cases = {c.public_id: c for c in s.scalars(select(Case).where(Case.public_id.in_(case_public_ids)))}
    out = {"cases": {}, "persons": {}, "duplicates": set()}
    for pid, c in cases.items():
        bk = ops._bound(s, vault, c.data_key_id)
        out["cases"][pid] = {
            "case_number": c.case_number, "office": c.office_id, "year": c.year, "seq": c.seq,
            "status": str(c.status), "priority": str(c.priority), "priority_rank": c.priority_rank,
            "needs_weight": c.needs_weight, "arrival_date": c.arrival_date, "arrival_mode": str(c.arrival_mode),
            "incident": (c.incident.vessel_name, c.incident.date, c.incident.number_aboard,
                         c.incident.departure_point, c.incident.disembarkation_point) if c.incident else None,
            "minor": c.minor_principal_confirmed, "created_by": c.created_by_id, "version": c.version,
            "location": bk.open(c.arrival_location_sealed, table="cases", column="arrival_location", row=c.public_id),
            "location_sealed": c.arrival_location_sealed is not None,
        }
        for p in c.members:
            values = ops.open_person(s, p, vault=vault)
            entries = sorted(tuple(r) for r in s.execute(select(BlindIndexEntry.kind, BlindIndexEntry.digest).where(
                BlindIndexEntry.owner_type == "person", BlindIndexEntry.owner_id == p.id,
                BlindIndexEntry.data_key_id == p.data_key_id)).all())
            out["persons"][p.public_id] = {
                "case": pid, "office": p.office_id, "relationship": str(p.relationship_to_principal),
                "status": str(p.status), "same_as": p.same_as_id, "sex": str(p.sex), "birth_year": p.birth_year,
                "dob_estimated": p.dob_estimated, "nationality": p.nationality, "stateless": p.stateless,
                "arrival_date": p.arrival_date, "arrival_mode": str(p.arrival_mode),
                "interpreter": p.interpreter_needed, "needs_weight": p.needs_weight, "has_photo": p.has_photo,
                "needs": p.need_codes, "version": p.version, "values": values, "entries": entries,
                "sealed": tuple(getattr(p, f"{n}_sealed") is not None for n in SEALED_PERSON_FIELDS),
                "key_live": s.get(DataKey, p.data_key_id).wrapped is not None,
            }
    person_ids = {p.id: p.public_id for c in cases.values() for p in c.members}
    for dd in s.scalars(select(DuplicateDecision).where(DuplicateDecision.person_id.in_(list(person_ids)))):
        out["duplicates"].add((person_ids[dd.person_id], dd.candidate.public_id, dd.reasons, str(dd.decision)))
    return out


def test_bulk_writes_the_same_rows_as_register_case(app, cw):
    vault = vault_for(app)
    payloads = _payloads()
    earlier = [_with_public_ids(p) for p in _synthetic_payloads(60, seed=9)]
    earlier.append(_with_public_ids(case_payload([member(given_name="Muhammad", family_name="Rahman",
                                                         date_of_birth="1990-04-02")])))
    with app.app_context(), session_scope(app) as s:
        for p in earlier:  # already registered: candidates for the batch's duplicates
            ops.register_case(s, cw, p, vault=vault)
        s.flush()
        validated = [rules.validate_case(p) for p in payloads]
        ids = [p["public_id"] for p in payloads]

        savepoint = s.begin_nested()
        for p in payloads:
            ops.register_case(s, cw, p, vault=vault)
        s.flush()
        one_by_one = _snapshot(s, vault, ids)
        savepoint.rollback()
        s.expire_all()

        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        ctx = BulkContext(vault)
        first = register_households_bulk(s, vault, validated[:100], office=office, user=cw, context=ctx)
        second = register_households_bulk(s, vault, validated[100:], office=office, user=cw, context=ctx)
        s.flush()
        s.expire_all()
        bulk = _snapshot(s, vault, ids)

    assert len(one_by_one["cases"]) == len(payloads) and one_by_one["duplicates"]
    assert any(d[0] in {m["public_id"] for m in payloads[-2]["members"]} and d[2].startswith("same_document")
               for d in one_by_one["duplicates"])  # the re-registration with another spelling
    assert bulk["cases"] == one_by_one["cases"]
    assert bulk["persons"] == one_by_one["persons"]
    assert bulk["duplicates"] == one_by_one["duplicates"]
    assert first.persons + second.persons == len(bulk["persons"])
    assert first.possible_duplicates + second.possible_duplicates == len(bulk["duplicates"])


def test_bulk_batch_is_one_audit_event_listing_its_cases(app, cw):
    vault = vault_for(app)
    validated = [rules.validate_case(p) for p in _synthetic_payloads(40, seed=2)]
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        res = register_households_bulk(s, vault, validated, office=office, user=cw, audit={"import": "x-1"})
    with session_scope(app) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.like("case.%"))).all()
        counter = s.scalar(select(CaseNumberCounter.last))
    assert [e.action for e in events] == ["case.create_bulk"]
    detail = json.loads(events[0].detail)
    assert detail["cases"] == res.case_ids and detail["persons"] == 40 and detail["import"] == "x-1"
    assert detail["case_numbers"] == [res.case_numbers[0], res.case_numbers[-1]]
    assert counter == len(validated)
    # the audit detail names no one: only ids, codes and counts
    assert not any(m["given_name"] in events[0].detail for h in validated for m in h["members"])


def test_bulk_registered_person_reads_back_and_is_found_by_a_spelling_variant(app, cw):
    vault = vault_for(app)
    payload = case_payload(family_of_four())
    case = rules.validate_case(payload)
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        res = register_households_bulk(s, vault, [case], office=office, user=cw)
        case_id = s.get(Case, res.case_ids[0]).public_id
    with app.app_context(), session_scope(app) as s:
        got = ops.read_case(s, cw, case_id, endpoint="test", vault=vault)
        hits = ops.search_persons(s, cw, name="Muhammad Rahmaan", vault=vault)
        by_doc = ops.search_persons(s, cw, document="mm 447 1230", vault=vault)
    assert got["case_number"].endswith("-000001") and got["arrival"]["location"] == "Lhokseumawe port"
    for sent, read in zip(payload["members"], got["members"], strict=True):
        assert read["given_name"] == sent["given_name"] and read["family_name"] == sent["family_name"]
        assert read["date_of_birth"] == sent["date_of_birth"]
        assert read["relationship"] == sent["relationship"]
        assert read["specific_needs"] == sent.get("specific_needs", [])
    assert got["members"][0]["documents"] == [{"type": "passport", "number": "MM4471230", "issuing_country": "MMR"}]
    assert got["members"][0]["phone"] == "+62 812 5550 1234"
    assert got["members"][3]["age_assessment"] == {"method": "family_declaration"}
    assert got["priority"] == "urgent"
    assert [h["given_name"] for h in hits.items] == ["Mohammed"]
    assert [h["case_number"] for h in by_doc.items] == [got["case_number"]]


def test_bulk_flags_duplicates_without_merging_them(app, cw):
    vault = vault_for(app)
    person = member(given_name="Abdullah", family_name="Noorzai", date_of_birth="1984-02-29",
                    documents=[{"type": "passport", "number": "P7788990", "issuing_country": "AFG"}])
    with app.app_context(), session_scope(app) as s:
        ops.register_case(s, cw, case_payload([person]), vault=vault)
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        again = dict(person, given_name="Abdollah")
        batch = [rules.validate_case(case_payload([again])), rules.validate_case(case_payload([dict(again)]))]
        res = register_households_bulk(s, vault, batch, office=office, user=cw)
    with session_scope(app) as s:
        persons = s.scalar(select(func.count()).select_from(Person))
        decisions = s.scalars(select(DuplicateDecision).order_by(DuplicateDecision.id)).all()
        statuses = {str(p.status) for p in s.scalars(select(Person))}
        pairs = [(d.person_id, d.candidate_id, d.reasons, str(d.decision)) for d in decisions]
    assert persons == 3 and statuses == {"active"}
    assert res.possible_duplicates == 3  # the 2nd matches the 1st; the 3rd matches both
    assert all(p[3] == "pending" and p[2].startswith("same_document") for p in pairs)


def test_bulk_refuses_another_office_and_a_repeated_public_id(app, cw):
    vault = vault_for(app)
    case = rules.validate_case(_with_public_ids(case_payload()))
    with app.app_context(), session_scope(app) as s:
        medan = s.scalar(select(Office).where(Office.code == "IDN-MDN"))
        with pytest.raises(ValidationFailed) as exc:
            register_households_bulk(s, vault, [case], office=medan, user=cw)
        assert "office" in exc.value.fields
        with pytest.raises(ValidationFailed):
            register_households_bulk(s, vault, [case], office="IDN-MDN", user=cw)
        register_households_bulk(s, vault, [case], office="IDN-JKT", user=cw)
        with pytest.raises(Conflict):
            register_households_bulk(s, vault, [case], office="IDN-JKT", user=cw)


def test_memoised_indexing_equals_the_vaults_own(app):
    vault = vault_for(app)
    ctx = BulkContext(vault)
    run = ctx.run_vault
    members = [m for p in _synthetic_payloads(400, seed=3) for m in rules.validate_case(p)["members"]]
    members.append(rules.validate_case(case_payload([member(given_name="Aung", family_name="", single_name=True,
                                                            date_of_birth="1990", dob_estimated=True,
                                                            age_assessment={"method": "self_declared"})]))
                   ["members"][0])
    for m in members:
        values = ops.stored_values(m)
        for _ in range(2):  # cold and memoised
            assert sorted(ops._index_entries(run, values)) == sorted(ops._index_entries(vault, values))
            mine = ops.duplicate_probe(run, values, blind=run.blind, keys=ctx.keys)
            theirs = ops.duplicate_probe(vault, values)
            assert mine == theirs
        run.blind.new_batch()
    for year in (None, 1990, "1990", date(1990, 4, 2), "1990-04-02"):
        assert run.blind.phonetic_name("Muhammad Rahman", year) == vault.blind.phonetic_name("Muhammad Rahman", year)


def test_bulk_baseline_measures_and_drops_its_table(app):
    from sqlalchemy import inspect

    engine = app.extensions["rso_engine"]
    result = bulk_baseline(engine, 300)
    assert result["rows"] == 300 and result["rows_per_second"] > 0
    assert "bench_baseline_persons" not in inspect(engine).get_table_names()


def test_bulk_register_synthetic_counts_what_it_registered(app, reference):
    result = bulk_register_synthetic(app, 250, seed=4, batch_persons=100)
    with session_scope(app) as s:
        persons = s.scalar(select(func.count()).select_from(Person))
        cases = s.scalar(select(func.count()).select_from(Case))
        dups = s.scalar(select(func.count()).select_from(DuplicateDecision))
    assert result["persons"] == persons == 250 - result["skipped"]
    assert result["cases"] == cases and result["possible_duplicates"] == dups
    assert result["persons_per_second"] > 0 and set(result["timings"]) >= {"prepare", "insert", "duplicates"}


def test_phonetic_only_match_needs_a_compatible_sex_in_bulk_and_one_by_one(app, cw):
    """A phonetic-name match alone is offered only for the same sex (or an undisclosed one);
    the same document, phone, or name and date of birth are offered whatever the sexes."""
    vault = vault_for(app)
    passport = [{"type": "passport", "number": "AF1234567", "issuing_country": "AFG"}]
    existing = member(given_name="Mohammed", family_name="Rahman", date_of_birth="1990-04-02", sex="M",
                      documents=passport)
    newcomers = {
        "same_sex": member(given_name="Muhammad", family_name="Rahman", date_of_birth="1990-11-30", sex="M"),
        "other_sex": member(given_name="Muhammad", family_name="Rahman", date_of_birth="1990-11-30", sex="F"),
        "undisclosed": member(given_name="Muhammad", family_name="Rahman", date_of_birth="1990-11-30", sex="X"),
        "other_sex_same_document": member(given_name="Muhammad", family_name="Rahman", date_of_birth="1990-11-30",
                                          sex="F", documents=passport),
        "other_sex_same_name_dob": member(given_name="Mohammed", family_name="Rahman", date_of_birth="1990-04-02",
                                          sex="F"),
    }
    expected = {
        "same_sex": ["phonetic_name"],
        "other_sex": None,
        "undisclosed": ["phonetic_name"],
        "other_sex_same_document": ["same_document", "phonetic_name"],
        "other_sex_same_name_dob": ["same_name_dob", "phonetic_name"],
    }
    with app.app_context(), session_scope(app) as s:
        first = ops.register_case(s, cw, case_payload([existing]), vault=vault)
        s.flush()
        them = first.persons[0].id
        one_by_one = {}
        for key, m in newcomers.items():
            found = ops.find_duplicates(s, rules.validate_case(case_payload([m]))["members"][0], vault=vault)
            one_by_one[key] = next((f.reasons for f in found if f.candidate.id == them), None)
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        # one household each, so none is the other's candidate within the batch
        res = register_households_bulk(s, vault, [rules.validate_case(case_payload([m])) for m in newcomers.values()],
                                       office=office, user=cw)
        bulk = {key: next((r for p, c, r, _v in res.duplicates if p == pids[0] and c == them), None)
                for key, pids in zip(newcomers, res.person_ids, strict=True)}
    assert one_by_one == expected
    assert bulk == expected


def test_sexes_compatible():
    assert ops.sexes_compatible("M", "M") and ops.sexes_compatible("F", "F")
    assert not ops.sexes_compatible("M", "F") and not ops.sexes_compatible("F", "M")
    assert ops.sexes_compatible("X", "F") and ops.sexes_compatible("M", "X")
    assert ops.sexes_compatible(None, "F")


def test_bulk_lists_the_same_duplicates_as_find_duplicates_for_common_names(app, cw):
    """More than ten phonetic candidates (bulk confirms them lazily, in list order, and reuses
    what it opened in earlier batches): each household, registered in bulk, is given exactly
    what find_duplicates lists for its members just before."""
    vault = vault_for(app)
    estimated = {"dob_estimated": True, "age_assessment": {"method": "self_declared"}}
    common = [case_payload([member(given_name=g, family_name="Rahman", sex="M",
                                   **({"date_of_birth": "1991"} | estimated if i % 3 == 0 else
                                      {"date_of_birth": f"1990-{1 + i % 12:02d}-0{1 + i % 9}"}))])
              for i, g in enumerate(["Mohammed", "Muhammad", "Mohamad", "Mohammad"] * 4)]
    earlier = [rules.validate_case(p) for p in _synthetic_payloads(300, seed=11) + common]
    later = [rules.validate_case(p) for p in _synthetic_payloads(120, seed=12)]
    later += [rules.validate_case(case_payload([member(given_name="Muhamad", family_name="Rahman", sex="M",
                                                       date_of_birth=d, **(estimated if len(d) == 4 else {}))]))
              for d in ("1990-06-15", "1991", "1990-02-02", "1990")]
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        ctx = BulkContext(vault)
        register_households_bulk(s, vault, earlier, office=office, user=cw, context=ctx)
        s.flush()
        crowded = 0
        for case in later:
            expected = {}
            for m in case["members"]:
                found = ops.find_duplicates(s, m, vault=vault)
                expected[m["given_name"], m["date_of_birth"]] = [(f.candidate.id, f.reasons) for f in found]
            res = register_households_bulk(s, vault, [case], office=office, user=cw, context=ctx)
            got = {(m["given_name"], m["date_of_birth"]): [(c, r) for p, c, r, _v in res.duplicates if p == pid]
                   for m, pid in zip(case["members"], res.person_ids[0], strict=True)}
            assert got == expected
            crowded += any(len(v) == 10 for v in expected.values())
    assert crowded >= 2  # the common name really had more candidates than are listed


def test_find_duplicates_opens_only_the_phonetic_candidates_it_lists(app, cw):
    """Forty namesakes born the same year, one with the same document: the ten listed are those
    opening every candidate would list first, yet only about ten are decrypted to find them."""

    vault = vault_for(app)
    passport = [{"type": "passport", "number": "MM7700123", "issuing_country": "MMR"}]
    namesakes = [case_payload([member(given_name=g, family_name="Rahman", sex="M",
                                      date_of_birth=f"1990-{1 + i % 12:02d}-{1 + i % 28:02d}",
                                      **({"documents": passport} if i == 37 else {}))])
                 for i, g in enumerate(["Mohammed", "Muhammad", "Mohamad", "Mohammad"] * 10)]
    probe = rules.validate_case(case_payload([member(given_name="Muhamad", family_name="Rahman", sex="M",
                                                     date_of_birth="1990-06-30", documents=passport)]))
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        register_households_bulk(s, vault, [rules.validate_case(p) for p in namesakes], office=office, user=cw)
        s.flush()
        with count_vault_reads() as every:
            everyone = ops.find_duplicates(s, probe["members"][0], vault=vault, limit=100)
        with count_vault_reads() as listed:
            first_ten = ops.find_duplicates(s, probe["members"][0], vault=vault)
    assert len(everyone) == 40 and everyone[0].reasons == ["same_document", "phonetic_name"]
    assert [(m.candidate.id, m.reasons) for m in first_ten] == [(m.candidate.id, m.reasons) for m in everyone[:10]]
    fields = len(ops.CONFIRM_FIELDS)
    assert every.count == 40 * fields and listed.count <= 11 * fields


def test_bulk_decrypts_only_the_names_of_candidates_found_by_the_phonetic_name_alone(app, cw):
    """Forty namesakes, one holding a passport. A first probe (no document) opens the ten it lists
    by their names only: had one of them its document, phone or name and date of birth, the exact
    look-ups would have found it. A second probe, in the same run, carries that passport: its
    holder, opened by name only just before, is opened again whole (the document is a reason).
    Both lists are exactly what find_duplicates gives."""
    from rso.registration.bulk import _NAME_FIELDS, _NOT_OPENED

    assert set(_NAME_FIELDS) | set(_NOT_OPENED) == set(ops.CONFIRM_FIELDS)
    vault = vault_for(app)
    passport = [{"type": "passport", "number": "MM7700123", "issuing_country": "MMR"}]
    namesakes = [case_payload([member(given_name=g, family_name="Rahman", sex="M",
                                      date_of_birth=f"1990-{1 + i % 12:02d}-{1 + i % 28:02d}",
                                      **({"documents": passport} if i == 1 else {}))])
                 for i, g in enumerate(["Mohammed", "Muhammad", "Mohamad", "Mohammad"] * 10)]
    probes = [rules.validate_case(case_payload([member(given_name="Muhamad", family_name="Rahman", sex="M",
                                                       date_of_birth="1990-06-30", **extra)]))
              for extra in ({}, {"documents": passport})]
    fields, names = len(ops.CONFIRM_FIELDS), len(_NAME_FIELDS)
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        register_households_bulk(s, vault, [rules.validate_case(p) for p in namesakes], office=office, user=cw)
        s.flush()
        ctx = BulkContext(vault)
        runs = []
        for probe in probes:
            expected = [(m.candidate.id, m.reasons) for m in ops.find_duplicates(s, probe["members"][0], vault=vault)]
            with count_vault_reads() as reads:
                res = register_households_bulk(s, vault, [probe], office=office, user=cw, context=ctx)
            assert [(c, r) for _p, c, r, _v in res.duplicates] == expected
            runs.append((expected, res.candidates_opened, reads.count))
    (first, opened, count), (second, reopened, recount) = runs
    assert len(first) == 10 and all(r == ["phonetic_name"] for _c, r in first)
    assert opened == 10 and count == 10 * names  # names only
    assert second[0][1] == ["same_document", "phonetic_name"]
    # the passport holder again, whole; the ten next namesakes (one not opened before) by name; the rest
    # came from the run's memory
    assert reopened == 2 and recount == fields + names


def test_bulk_reads_the_plain_columns_only_of_the_phonetic_candidates_it_walks(app, cw, monkeypatch):
    """Sixty namesakes born in 1990, every other one a woman, then ten born in 1991. For a man born
    on a known day in 1990 the candidates can only be men born in 1990, walked in id order, their
    sex and birth year read as they come up; for one born about 1991, men born in 1991 come first,
    then those born in 1990. Far fewer than the seventy owners found are read, and each list is
    the one find_duplicates gives."""
    from rso.registration import bulk

    vault = vault_for(app)
    namesakes = [case_payload([member(given_name=g, family_name="Rahman", sex="F" if i % 2 else "M",
                                      date_of_birth=f"{1991 if i >= 60 else 1990}-{1 + i % 12:02d}-{1 + i % 28:02d}")])
                 for i, g in enumerate(["Mohammed", "Muhammad", "Mohamad", "Mohammad", "Mohamed"] * 14)]
    estimated = {"dob_estimated": True, "age_assessment": {"method": "self_declared"}}
    probes = [rules.validate_case(case_payload([member(given_name="Muhamad", family_name="Rahman", sex="M",
                                                       date_of_birth=dob, **(estimated if len(dob) == 4 else {}))]))
              for dob in ("1990-06-30", "1990-03-03", "1991")]
    read: list[int] = []
    plain_columns = bulk._plain_columns

    def counting(s, ids):
        ids = list(ids)
        read.extend(ids)
        return plain_columns(s, ids)

    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        register_households_bulk(s, vault, [rules.validate_case(p) for p in namesakes], office=office, user=cw)
        s.flush()
        owners = set(s.scalars(select(BlindIndexEntry.owner_id).where(BlindIndexEntry.kind == "phonetic_pair")))
        expected = [[(m.candidate.id, m.reasons) for m in ops.find_duplicates(s, p["members"][0], vault=vault)]
                    for p in probes]
        monkeypatch.setattr(bulk, "_plain_columns", counting)
        res = register_households_bulk(s, vault, probes, office=office, user=cw, context=BulkContext(vault))
    assert len(owners) == 70
    for probe_ids, listed in zip(res.person_ids, expected, strict=True):
        assert [(c, r) for p, c, r, _v in res.duplicates if p == probe_ids[0]] == listed
    assert len(expected[0]) == 10 and all(r == ["phonetic_name"] for _c, r in expected[0])
    assert expected[1] == expected[0]  # the first probe (same batch) comes after ten namesakes with smaller ids
    assert [r for _c, r in expected[2]] == [["phonetic_name"]] * 5 + [["phonetic_name_near"]] * 5
    # ten men and the ten women between them; the ten born in 1991
    assert len(set(read)) == 30 < len(owners)


def test_a_same_year_namesake_is_not_cut_by_five_hundred_born_the_year_before(app, cw):
    """A look-up keeps 500 phonetic candidates. For a man born about 1990, 510 namesakes born in 1989
    (each a possible phonetic_name_near) have smaller ids than the one born in 1990; he is kept, and
    listed first, by find_duplicates and by the bulk path alike."""
    vault = vault_for(app)
    namesakes = [case_payload([member(given_name="Mohammed", family_name="Rahman", sex="M",
                                      date_of_birth=f"{1989 if i < 510 else 1990}-{1 + i % 12:02d}-{1 + i % 28:02d}")])
                 for i in range(511)]
    probe = rules.validate_case(case_payload([member(given_name="Muhammad", family_name="Rahman", sex="M",
                                                     date_of_birth="1990", dob_estimated=True,
                                                     age_assessment={"method": "self_declared"})]))
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        first = register_households_bulk(s, vault, [rules.validate_case(p) for p in namesakes], office=office,
                                         user=cw)
        s.flush()
        born_1990 = first.person_ids[-1][0]
        expected = [(m.candidate.id, m.reasons) for m in ops.find_duplicates(s, probe["members"][0], vault=vault)]
        res = register_households_bulk(s, vault, [probe], office=office, user=cw, context=BulkContext(vault))
    assert expected[0] == (born_1990, ["phonetic_name"])
    assert [r for _c, r in expected[1:]] == [["phonetic_name_near"]] * 9
    assert [(c, r) for _p, c, r, _v in res.duplicates] == expected


def test_a_name_and_date_of_birth_candidate_born_another_year_stays_shut(app, cw, monkeypatch):
    """The name + date of birth index is truncated: at a million persons some twenty unrelated
    persons share each digest. Here it keeps a single bucket, so all 24 persons are candidates of
    every probe. Only those born the probe's year are decrypted (their date may be the same); the
    real match is listed, and so is a namesake born the year before, for a probe born about 1990
    (through the phonetic look-up), exactly as find_duplicates lists them."""
    from rso.vault.blind import NAME_DOB, BlindIndexer

    digest = BlindIndexer.digest
    monkeypatch.setattr(BlindIndexer, "digest",
                        lambda self, kind, normalised: "0" if kind == NAME_DOB else digest(self, kind, normalised))
    vault = vault_for(app)
    names = [("Aung", "Kyaw"), ("Nur", "Begum"), ("Karim", "Ullah"), ("Zahra", "Karimi"), ("Ahmad", "Wali"),
             ("Thida", "Win"), ("Selvi", "Kumar"), ("Hawa", "Juma"), ("Ibrahim", "Sesay"), ("Lina", "Haddad"),
             ("Omar", "Farouk"), ("Grace", "Otieno")]
    others = [case_payload([member(given_name=g, family_name=f, date_of_birth=f"{1970 + i}-03-0{1 + i % 9}")])
              for i, (g, f) in enumerate(names + [(f, g) for g, f in names[:8]])]
    others += [case_payload([member(given_name=g, family_name=f, date_of_birth="1990-02-02")])
               for g, f in (("Thu", "Zar"), ("Abdi", "Noor"))]
    match = case_payload([member(given_name="Mohammed", family_name="Rahman", sex="M", date_of_birth="1990-06-30")])
    near = case_payload([member(given_name="Muhammad", family_name="Rahman", sex="M", date_of_birth="1989-05-05")])
    probes = [rules.validate_case(case_payload([member(given_name="Mohammed", family_name="Rahman", sex="M",
                                                       date_of_birth="1990-06-30")])),
              rules.validate_case(case_payload([member(given_name="Mohamad", family_name="Rahman", sex="M",
                                                       date_of_birth="1990", dob_estimated=True,
                                                       age_assessment={"method": "self_declared"})]))]
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        first = register_households_bulk(s, vault, [rules.validate_case(p) for p in [*others, match, near]],
                                         office=office, user=cw)
        s.flush()
        bucket = set(s.scalars(select(BlindIndexEntry.owner_id).where(BlindIndexEntry.kind == NAME_DOB)))
        match_id, near_id = first.person_ids[-2][0], first.person_ids[-1][0]
        runs = []
        for probe in probes:
            with count_vault_reads() as reads:
                expected = [(m.candidate.id, m.reasons) for m in ops.find_duplicates(s, probe["members"][0],
                                                                                    vault=vault)]
            res = register_households_bulk(s, vault, [probe], office=office, user=cw, context=BulkContext(vault))
            assert [(c, r) for _p, c, r, _v in res.duplicates] == expected
            runs.append((expected, reads.count, res.candidates_opened, res.person_ids[0][0]))
    assert len(bucket) == 24
    (exact, exact_reads, exact_opened, exact_id), (about, about_reads, about_opened, _) = runs
    assert exact == [(match_id, ["same_name_dob", "phonetic_name"])]
    # (the first probe is registered by then)
    assert about == [(match_id, ["phonetic_name"]), (exact_id, ["phonetic_name"]), (near_id, ["phonetic_name_near"])]
    # those born in 1990, whole, and the namesake born in 1989 (its phonetic name: one-by-one, whole)
    fields = len(ops.CONFIRM_FIELDS)
    assert exact_reads == 3 * fields and exact_opened == 3
    assert about_reads == 5 * fields and about_opened == 5


def test_phonetic_duplicates_come_from_the_pair_index_and_reindexing_restores_it(app, cw):
    """Two name tokens in common (here one from an alias) are looked up as a pair + year; a
    database indexed before the pair index existed finds them again after reindex_persons."""
    vault = vault_for(app)
    existing = member(given_name="Abdul Karim", family_name="Noorzai", other_names=["Hamid Safi"],
                      date_of_birth="1979-03-03", sex="M")
    probe = rules.validate_case(case_payload([member(given_name="Hamid", family_name="Noorzay",
                                                     date_of_birth="1979-12-12", sex="M")]))["members"][0]
    with app.app_context(), session_scope(app) as s:
        first = ops.register_case(s, cw, case_payload([existing]), vault=vault)
        them = first.persons[0].id
        assert [(f.candidate.id, f.reasons) for f in ops.find_duplicates(s, probe, vault=vault)] == [
            (them, ["phonetic_name"])]
        pairs = select(func.count()).select_from(BlindIndexEntry).where(
            BlindIndexEntry.kind == "phonetic_pair", BlindIndexEntry.owner_id == them)
        expected = vault.blind.phonetic_pairs(["Abdul Karim Noorzai", "Hamid Safi"], 1979)
        assert s.scalar(pairs) == len(expected) >= 6  # every two tokens of both names
        # as a database indexed before the pair index existed
        s.execute(delete(BlindIndexEntry).where(BlindIndexEntry.kind == "phonetic_pair"))
        assert ops.find_duplicates(s, probe, vault=vault) == []
        assert ops.reindex_persons(s, vault=vault) == (1, 0)
        assert s.scalar(pairs) == len(expected)
        assert [(f.candidate.id, f.reasons) for f in ops.find_duplicates(s, probe, vault=vault)] == [
            (them, ["phonetic_name"])]


def test_bulk_run_sees_a_correction_made_between_its_batches(app, cw):
    """What a run remembers of a candidate is used only while the person's row is unchanged:
    corrected between two batches, the candidate is opened again and judged on its new name."""
    vault = vault_for(app)
    ctx = BulkContext(vault)
    karim = member(given_name="Karim", family_name="Ullah", sex="M", date_of_birth="1988-05-05",
                   phone="+62 811 222 333")
    with app.app_context(), session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        done = register_households_bulk(s, vault, [rules.validate_case(case_payload([karim]))], office=office,
                                        user=cw, context=ctx)
        them = done.person_ids[0][0]
        same = register_households_bulk(s, vault, [rules.validate_case(case_payload([karim]))], office=office,
                                        user=cw, context=ctx)
        case_id, pid = s.get(Case, done.case_ids[0]).public_id, s.get(Person, them).public_id
        ops.correct_case(s, cw, case_id, {"version": 1, "reason": "spelling from the passport",
                                          "members": [{"id": pid, "given_name": "Rahim", "family_name": "Baig"}]},
                         vault=vault)
        s.flush()
        after = register_households_bulk(s, vault, [rules.validate_case(case_payload([karim]))], office=office,
                                         user=cw, context=ctx)
    assert same.candidates_opened == 0  # remembered from the first batch
    assert [(c, r) for _p, c, r, _v in same.duplicates] == [(them, ["same_phone", "same_name_dob", "phonetic_name"])]
    assert after.candidates_opened == 1  # changed since: opened again
    got = {c: (r, v["given_name"]) for _p, c, r, v in after.duplicates}
    assert got[them] == (["same_phone"], "Rahim")
