"""The default schema loads, and the demo data built from it is deterministic and valid."""
from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from app.demo import DEFAULT_DATA_DIR, build_demo_rows
from app.fields.values import validate_value
from app.schema import SchemaSpec, load_schema

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
USERS = [1, 2, 3]

STABLE_KEYS = {
    "customer": ["name", "uscc", "industry", "grade", "status", "province", "region", "address", "website",
                 "owner", "credit_limit", "payment_terms", "source", "tags", "hazardous_licence_no",
                 "hazardous_licence_expiry", "notes"],
    "contact": ["customer", "name", "title", "mobile", "email", "wechat", "is_primary"],
    "product": ["code", "name", "cas_number", "category", "ghs_hazards", "un_number", "purity", "package_spec",
                "unit_price", "formula", "process_notes", "sds", "sds_revision_date"],
    "order": ["number", "customer", "order_date", "status", "currency", "total", "delivery_date", "salesperson"],
    "order_line": ["order", "product", "quantity", "unit", "unit_price", "amount"],
    "invoice": ["customer", "order", "number", "amount", "issue_date", "status", "invoice_type"],
    "payment": ["customer", "order", "invoice", "amount_due", "due_date", "paid_amount", "paid_date", "status"],
    "feedback": ["customer", "feedback_date", "type", "satisfaction", "content", "status", "handler"],
    "follow_up": ["customer", "contact", "visit_date", "channel", "content", "next_date", "owner"],
}


@pytest.fixture(scope="module")
def schema() -> SchemaSpec:
    return load_schema(SCHEMA_DIR)


@pytest.fixture(scope="module")
def small(schema: SchemaSpec) -> dict[str, list[dict]]:
    return build_demo_rows(schema, USERS, seed=7, scale=0.05)


def test_default_schema_has_the_stable_keys(schema: SchemaSpec) -> None:
    for table_key, field_keys in STABLE_KEYS.items():
        table = schema.table(table_key)
        for key in field_keys:
            assert table.has_field(key), f"{table_key}.{key}"
    assert schema.table("product").field("un_number").pattern
    assert schema.table("customer").field("owner").type == "user"
    assert schema.table("contact").field("customer").on_delete == "cascade"
    assert schema.table("order").field("customer").on_delete == "restrict"


def test_every_label_has_both_languages(schema: SchemaSpec) -> None:
    for table in schema.tables:
        assert table.label.zh and table.label.en and table.label.zh != table.label.en, table.key
        for f in table.fields:
            assert f.label.zh != f.key and f.label.en != f.key, f"{table.key}.{f.key} has no label"
    for choice_list in schema.choices.values():
        for option in choice_list.options:
            assert option.label.zh and option.label.en, f"{choice_list.key}.{option.key}"


def test_same_seed_gives_the_same_rows(schema: SchemaSpec, small: dict[str, list[dict]]) -> None:
    assert build_demo_rows(schema, USERS, seed=7, scale=0.05) == small
    assert build_demo_rows(schema, USERS, seed=8, scale=0.05) != small


def test_tables_come_parents_first(schema: SchemaSpec, small: dict[str, list[dict]]) -> None:
    seen: list[str] = []
    for table_key in small:
        for f in schema.table(table_key).fields:
            if f.type == "link":
                assert f.to in seen, f"{table_key}.{f.key} points at {f.to}, which comes later"
        seen.append(table_key)
    assert set(small) == {t.key for t in schema.tables}


def test_every_value_is_valid(schema: SchemaSpec, small: dict[str, list[dict]]) -> None:
    assert_valid(schema, small)


def assert_valid(schema: SchemaSpec, small: dict[str, list[dict]]) -> None:
    """Fail unless every row value suits its field: type, options, format, required, link range."""
    for table_key, rows in small.items():
        table = schema.table(table_key)
        assert rows, table_key
        for i, row in enumerate(rows):
            assert set(row) <= {f.key for f in table.fields}
            for f in table.fields:
                value = row.get(f.key)
                where = f"{table_key}[{i}].{f.key}={value!r}"
                if f.required:
                    assert value is not None and value != "", where
                if f.type == "link":
                    assert value is None or 0 <= value < len(small[f.to]), where
                elif f.type == "user":
                    assert value is None or value in USERS, where
                elif f.type == "attachment":
                    assert value is None, where
                else:
                    parsed, problems = validate_value(value, f)
                    assert not problems, f"{where}: {[p.en for p in problems]}"
                    assert parsed == value or value is None, where


def test_unique_fields_have_no_duplicates(schema: SchemaSpec, small: dict[str, list[dict]]) -> None:
    for table_key, rows in small.items():
        for f in schema.table(table_key).fields:
            if f.unique:
                values = [row[f.key] for row in rows if row.get(f.key) is not None]
                duplicates = [v for v, n in Counter(values).items() if n > 1]
                assert not duplicates, f"{table_key}.{f.key}: {duplicates[:5]}"


def test_amounts_add_up(small: dict[str, list[dict]]) -> None:
    totals = [Decimal(0)] * len(small["order"])
    for line in small["order_line"]:
        assert line["amount"] == line["quantity"] * line["unit_price"]
        totals[line["order"]] += line["amount"]
    for order, total in zip(small["order"], totals, strict=True):
        assert order["total"] == total, order["number"]


def test_related_rows_agree(small: dict[str, list[dict]]) -> None:
    contacts = small["contact"]
    for order in small["order"]:
        if order["contact"] is not None:
            assert contacts[order["contact"]]["customer"] == order["customer"]
    for invoice in small["invoice"]:
        order = small["order"][invoice["order"]]
        assert invoice["customer"] == order["customer"]
        if order["currency"] == "CNY":
            assert invoice["amount"] == order["total"]
        assert invoice["issue_date"] >= order["order_date"]
    for payment in small["payment"]:
        assert payment["paid_amount"] <= payment["amount_due"]
        assert payment["customer"] == small["invoice"][payment["invoice"]]["customer"]
    for customer_index in range(len(small["customer"])):
        primaries = [c for c in contacts if c["customer"] == customer_index and c["is_primary"]]
        assert len(primaries) == 1


def test_full_scale_counts_and_speed(schema: SchemaSpec) -> None:
    import time

    start = time.perf_counter()
    rows = build_demo_rows(schema, USERS)
    elapsed = time.perf_counter() - start
    counts = {key: len(value) for key, value in rows.items()}
    assert 250 <= counts["customer"] <= 350
    assert 600 <= counts["contact"] <= 1000
    assert 50 <= counts["product"] <= 80
    assert 2500 <= counts["order"] <= 3500
    assert 7500 <= counts["order_line"] <= 10500
    for key in ("invoice", "payment", "follow_up"):
        assert 1000 <= counts[key] <= 5000, key
    assert 100 <= counts["feedback"] <= 1000
    assert elapsed < 10, f"generation took {elapsed:.1f} s"
    assert_valid(schema, rows)


def test_no_users_leaves_user_fields_empty(schema: SchemaSpec) -> None:
    rows = build_demo_rows(schema, [], scale=0.02)
    assert all(row["owner"] is None for row in rows["customer"])


def test_demo_data_comes_from_a_data_folder(schema: SchemaSpec, small: dict[str, list[dict]], tmp_path: Path) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, folder)
    chemicals = folder / "chemicals.yaml"
    text = chemicals.read_text(encoding="utf-8")
    assert "  - name: 异丙醇\n" in text and small["product"][0]["name"] == "异丙醇"
    chemicals.write_text(text.replace("  - name: 异丙醇\n", "  - name: 电子级异丙醇\n"), encoding="utf-8")
    rows = build_demo_rows(schema, USERS, seed=7, scale=0.05, data_dir=folder)
    assert rows["product"][0] == {**small["product"][0], "name": "电子级异丙醇"}
    assert rows["product"][1:] == small["product"][1:]
    assert rows["customer"] == small["customer"] and rows["order_line"] == small["order_line"]
    assert [r["content"] for r in rows["follow_up"]] == [r["content"].replace("异丙醇", "电子级异丙醇")
                                                         for r in small["follow_up"]]

    chemicals.write_text(text.replace('price: "6800"', "price: 很便宜", 1), encoding="utf-8")
    with pytest.raises(ValueError) as error:
        build_demo_rows(schema, USERS, seed=7, scale=0.05, data_dir=folder)
    assert str(error.value) == (f"demo data file {chemicals}: chemicals > item 1 (乙醇) > price: must be a number "
                                "of at least 0 in double quotes, such as \"6800\", not '很便宜'")

    (folder / "names.yaml").unlink()
    with pytest.raises(ValueError) as error:
        build_demo_rows(schema, USERS, data_dir=folder)
    assert str(error.value) == (f"demo data file {folder / 'names.yaml'} is missing (a demo data folder holds "
                                "provinces.yaml, names.yaml, companies.yaml, contacts.yaml, chemicals.yaml, "
                                "texts.yaml, business.yaml)")
