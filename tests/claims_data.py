"""A synthetic health-claims batch shaped like an EHR/claims export, with the raw PHI such exports
carry. Deterministic (fixed seed); nobody real: invented names and streets, 555-01xx phone numbers,
example.* email domains, SSNs in the never-issued 9xx range, private IP ranges.

Regenerate pipelines/data/claims_batch.ndjson with `python -m tests.claims_data`."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SEED = 20261122
OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "claims_batch.ndjson"

# fmt: off
FIRST = ["Avery", "Briar", "Caelan", "Dorian", "Elowen", "Fenwick", "Galen", "Halloran", "Isolde", "Jory",
         "Kestrel", "Linnea", "Marisol", "Nerys", "Oriel", "Peregrine", "Quillon", "Rosalind", "Soren",
         "Tamsin", "Ulric", "Verity", "Wystan", "Xanthe", "Yarrow", "Zinnia", "José", "Zoë", "Søren"]
LAST = ["Ashgrove", "Brambleton", "Corvane", "Dunmere", "Elderwick", "Fallowby", "Greythorne", "Hollins",
        "Ivesdale", "Jessamy", "Kittering", "Lowenfeld", "Marchbank", "Nettleford", "Orrinshaw",
        "Pendarvis", "Quenby", "Rookwood", "Sallowmere", "Thistlewood", "Núñez", "Østergaard"]
STREETS = ["Larkspur", "Quarry Hollow", "Tinderbox", "Wrenfield", "Copperleaf", "Saltmarsh", "Gullwing"]
SUFFIXES = ["Ln", "Rd", "Way", "Ct", "Pl"]
CITIES = ["Millbrook Falls", "Eastvale Crossing", "Northwick Hollow", "Glenmoor", "Pinecrest Harbor",
          "Ravensholm", "Cedarford Junction"]
# (3-digit prefix, state): ordinary prefixes and every Safe Harbor restricted one
PLACES = [("021", "MA"), ("024", "MA"), ("100", "NY"), ("112", "NY"), ("606", "IL"), ("941", "CA"),
          ("770", "TX"), ("303", "GA"), ("981", "WA"), ("063", "CT"), ("036", "NH"), ("059", "VT"),
          ("102", "NY"), ("203", "DC"), ("556", "MN"), ("692", "NE"), ("790", "TX"), ("821", "WY"),
          ("823", "WY"), ("830", "WY"), ("831", "WY"), ("878", "NM"), ("879", "NM"), ("884", "NM"),
          ("890", "NV"), ("893", "NV")]
CPT = ["99213", "99214", "99203", "80053", "85025", "71046", "93000", "36415", "97110", "90471", "G0439"]
PORTAL = "https://portal.example.org/patients/"
# fmt: on


def _phone(rng: random.Random, area: int) -> str:
    line = f"01{rng.randint(0, 99):02d}"  # 555-0100..0199: reserved for fiction
    style = rng.randrange(4)
    return [f"({area}) 555-{line}", f"{area}-555-{line}", f"{area}.555.{line}", f"+1 {area} 555 {line}"][
        style
    ]


def _zip(rng: random.Random, prefix: str) -> str | None:
    five = prefix + f"{rng.randint(0, 99):02d}"
    roll = rng.random()
    if roll < 0.06:
        return None
    if roll < 0.22:
        return f"{five}-{rng.randint(0, 9999):04d}"
    if roll < 0.32 and five.startswith("0"):
        return five.lstrip("0")  # a spreadsheet dropped the leading zero
    return five


def _patient(rng: random.Random, i: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    prefix, state = rng.choice(PLACES)
    domain = rng.choice(["example.com", "example.org", "example.net"])
    area = rng.choice([617, 212, 312, 415, 713, 404, 206, 603, 802, 775, 307, 505])
    old = rng.random() < 0.1  # 90 or older at the time of service
    born = date(1928 + rng.randint(0, 4), 1, 1) if old else date(1935 + rng.randint(0, 86), 1, 1)
    born += timedelta(days=rng.randint(0, 364))
    return {
        "patient_id": f"PAT-{40000 + i * 7:05d}",
        "patient_name": f"{first} {last}",
        "date_of_birth": None if rng.random() < 0.03 else born.isoformat(),
        "address": f"{rng.randint(10, 9899)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}",
        "city": rng.choice(CITIES),
        "state": state,
        "zip": _zip(rng, prefix),
        "phone": None if rng.random() < 0.05 else _phone(rng, area),
        "email": None if rng.random() < 0.1 else f"{first}.{last}{rng.randint(1, 99)}@{domain}".lower(),
        "ssn": f"9{rng.randint(0, 99):02d}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "medical_record_number": f"MRN{rng.randint(1000000, 9999999)}",
        "member_id": f"W{rng.randint(100000000, 999999999)}",
        "policy_number": f"POL{rng.randint(10000000, 99999999)}",
        "group_number": f"GRP-{rng.randint(10000, 99999)}",
        "area": area,
    }


def _notes(rng: random.Random, p: dict[str, Any], claim: dict[str, Any]) -> str | None:
    alt = _phone(rng, p["area"])
    choices = [
        None,
        "Billing question resolved; no follow-up.",
        f"Patient called from {alt} about the balance; asked for a reply to {p['email'] or 'post'}.",
        f"Portal login from {claim['ip_address']}; statement at {PORTAL}{p['medical_record_number']}.",
        f"Identity verified with SSN {p['ssn']} and member {p['member_id']}; callback {p['phone'] or alt}.",
        f"Account {claim['account_number']} on hold pending EOB; chart {p['medical_record_number']}.",
        f"Fax records to {alt}. Contact: {p['email'] or 'n/a'} (fe80::{rng.randint(1, 9999):x}:1 logged).",
    ]
    return rng.choice(choices)


def make_claims(n: int = 200, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    patients = [_patient(rng, i) for i in range(n * 3 // 5)]
    claims = []
    for i in range(n):
        p = rng.choice(patients)
        service = date(2023, 1, 1) + timedelta(days=rng.randint(0, 729))
        inpatient = rng.random() < 0.3
        codes = rng.sample(CPT, rng.randint(1, 4))
        octets = [rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)]
        ip = rng.choice([f"10.{octets[0]}.{octets[1]}.{octets[2]}", f"192.168.{octets[1]}.{octets[2]}", None])
        services = [{"procedure_code": c, "amount": round(rng.uniform(15, 1800), 2)} for c in codes]
        claim: dict[str, Any] = {
            "claim_id": f"CLM-{service.year}-{100000 + i * 13:06d}",
            "patient_id": p["patient_id"],
            "provider_id": f"NPI{1000000000 + rng.randint(0, 40) * 7919}",
            "service_date": service.isoformat(),
            "services": services,
            "total_amount": round(sum(s["amount"] for s in services), 2),
            "insurance": {"policy_number": p["policy_number"], "group_number": p["group_number"]},
            "account_number": f"ACCT-{rng.randint(10000000, 99999999)}",
            "ip_address": ip,
            "admission_date": service.isoformat() if inpatient else None,
            "discharge_date": (service + timedelta(days=rng.randint(1, 12))).isoformat()
            if inpatient
            else None,
        }
        for key in ("patient_name", "date_of_birth", "address", "city", "state", "zip", "phone", "email"):
            claim[key] = p[key]
        for key in ("ssn", "medical_record_number", "member_id"):
            claim[key] = p[key]
        claim["notes"] = _notes(rng, p, claim)
        claims.append(claim)
    return claims


def write(path: Path = OUT) -> Path:
    lines = (json.dumps(c, ensure_ascii=False) for c in make_claims())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
