"""The statistical case facts at intake: the form, the API and the intake file store codes only."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from models.access import GrantKind
from models.errors import BadInput
from models.intake import validate_intake
from models.referral import Referral
from tests.web.test_pages import csrf_of

CONSENT = ["uptd-ppa", "polres-ppa", "dinsos", "dinkes", "psikolog", "lbh", "lpsk", "disnaker"]


def test_the_form_records_the_case_facts_as_codes(client, world):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})
    form = client.get("/coordinator/intake?pathway=tppo-dewasa").text
    assert "Bentuk eksploitasi" in form and 'value="online-scam"' in form
    base = {
        "csrf": csrf_of(form),
        "pathway": "tppo-dewasa",
        "name": "Rina Contoh",
        "sex": "F",
        "birth_year": "1999",
        "nationality": "ID",
        "consent": [*CONSENT, "ngo"],
        "consent_given": "1",
        "fact_exploitation": "online-scam",
        "fact_source": "returnee-at-port",
        "fact_recruitment": "",
    }
    address = client.post("/coordinator/intake", data={**base, "fact_place": "Jl. Mawar 3"})
    assert address.status_code == 400
    assert "Isian \u201cTempat kejadian (negara/provinsi)\u201d belum benar" in address.text
    alert = address.text.split('role="alert"')[1].split("</p>")[0]
    assert "MAWAR" not in alert.upper()  # the error names the field, never what was typed
    launched = client.post("/coordinator/intake", data={**base, "fact_place": "kh"})
    assert launched.status_code == 303, launched.text
    with Session(world.engine) as session:
        referral = session.exec(select(Referral)).one()
    assert (referral.exploitation, referral.case_source, referral.recruitment, referral.place) == (
        "online-scam",
        "returnee-at-port",
        None,
        "KH",
    )


def test_the_api_and_the_intake_file_take_facts_and_refuse_unknown_codes(intake_data):
    intake = validate_intake({**intake_data, "facts": {"exploitation": "labour", "place": "ID-BE"}})
    assert intake.facts.columns()["place"] == "ID-BE"
    with pytest.raises(BadInput) as refused:
        validate_intake({**intake_data, "facts": {"exploitation": "slavery"}})
    assert "facts.exploitation" in str(refused.value) and "slavery" not in str(refused.value)
    with pytest.raises(BadInput):
        validate_intake({**intake_data, "facts": {"place": "Desa Suka Maju RT 02"}})
