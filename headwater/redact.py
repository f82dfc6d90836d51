"""Keep secrets and PII out of messages, logs, run records and samples."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import polars as pl

_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)([^@\s]+)(@)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(
    r"(?<![\w.:/-])(?:\+\d{1,3}[\s.-]?\d[\d\s.-]{6,13}\d"  # international: +44 20 7946 0958
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}"  # North American: (415) 555-2671, 415-555-2671
    r"|0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4})(?![\w.:/-])"  # national with a trunk 0: 020 7946 0958
)
_VALUE_LIST = re.compile(r"(values?: )\[[^\]]*\]")
_DRIVER_DETAIL = re.compile(
    r"\n?\[(?:SQL|parameters): .*?(?=\n\[|\n\(Background|\Z)|\n?\(Background on this error at: [^)]*\)",
    re.DOTALL,
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_BEARER = re.compile(r"(?i)(bearer|token|api[_-]?key|password|secret)([\s:=\"']+)([^\s\"',;]+)")
PII_COLUMN = re.compile(
    r"(?i)(e-?mail|phone|mobile|ssn|social_security|first_?name|last_?name|full_?name|surname|patient_name|"
    r"address|street|zip|postcode|postal|birth|dob|mrn|medical_record|passport|licen[cs]e|ip_address|"
    r"account_number|card|iban|policy_number|member_id)"
)


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """`text` with every known secret value (4 characters or more) replaced by ***."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, bearer tokens, known secret values, emails, phone numbers and SSNs."""
    out = _DRIVER_DETAIL.sub("", text)  # SQLAlchemy appends the statement and its parameters: row data
    out = _VALUE_LIST.sub(r"\1[…]", out)  # Polars lists the values that failed: row data
    out = mask_known(_URL_PASSWORD.sub(r"\1***\3", out), secrets)
    out = _BEARER.sub(r"\1\2***", out)
    out = _SSN.sub("***-**-****", out)
    out = _EMAIL.sub(r"\1***@\2", out)
    return _PHONE.sub(lambda m: "***" + m.group(0)[-2:], out)


def mask_value(value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    if len(text) <= 2:
        return "*" * len(text)
    return text[0] + "*" * (len(text) - 2) + text[-1]


def masked_sample(
    frame: pl.DataFrame, rows: int = 5, pii_columns: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """A few rows for the run record: PII-like columns masked whole, emails/phones in text masked."""
    extra = set(pii_columns)
    sample = frame.head(rows)
    out = []
    for row in sample.iter_rows(named=True):  # at most `rows` rows: a sample, not a data path
        masked: dict[str, Any] = {}
        for col, value in row.items():
            if col in extra or PII_COLUMN.search(col):
                masked[col] = mask_value(value)
            elif isinstance(value, str):
                masked[col] = redact(value)
            elif isinstance(value, int | float | bool) or value is None:
                masked[col] = value
            else:
                masked[col] = str(value)
        out.append(masked)
    return out
