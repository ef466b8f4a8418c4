"""The schema loader: every mistake reported at once, sorted, with file:line, path and hint."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.schema import SchemaError, load_schema, load_schema_text


def problems(files: dict[str, str]) -> str:
    with pytest.raises(SchemaError) as caught:
        load_schema_text(files)
    return str(caught.value)


GOOD = """
choices:
  customer_status:
    - {key: prospect, label: {zh: 潜在客户, en: Prospect}, color: "#8c8c8c"}
    - {key: active,   label: {zh: 合作中,   en: Active},   color: "#52c41a"}
tables:
  customer:
    label: {zh: 客户, en: Customer}
    title: name
    fields:
      name:    {type: string, label: {zh: 公司名称, en: Company}, required: true, unique: true, max_length: 200}
      uscc:    {type: uscc, label: 统一社会信用代码}
      status:  {type: choice, options: customer_status, default: prospect}
      grade:
        type: choice
        options:
          - {key: A, label: A类, color: "#f5222d"}
          - {key: B, label: B类}
      owner:   {type: user, label: 负责销售}
    list: [name, status, grade, owner]
    search: [name, uscc]
"""


def test_the_example_from_the_docs_loads() -> None:
    schema = load_schema_text({"customer.yaml": GOOD})
    customer = schema.table("customer")
    assert [f.key for f in customer.fields] == ["name", "uscc", "status", "grade", "owner"]
    assert customer.field("status").default == "prospect"
    assert customer.field("grade").choices.option("A").color == "#f5222d"
    assert customer.field("name").label.text("en") == "Company"
    assert customer.field("uscc").label.text("en") == "统一社会信用代码"


def test_every_problem_in_every_file_is_reported_sorted() -> None:
    report = problems({
        "schema/b.yaml": "tables:\n  contact:\n    fields:\n      customer: {type: link, to: custmer}\n",
        "schema/a.yaml": (
            "tables:\n"
            "  customer:\n"
            "    fields:\n"
            "      name: {type: string}\n"
            "      email: {type: emial}\n"
            "      status: {type: choice, options: statuses}\n"
            "    list: [name, nme]\n"),
    })
    assert report == (
        "schema/a.yaml:5: tables.customer.fields.email.type: unknown field type 'emial'\n"
        "    hint: did you mean 'email'? known types: attachment, boolean, cas_number, choice, date, datetime, "
        "decimal, email, integer, link, money, multi_choice, percent, phone, rating, string, text, url, uscc, user\n"
        "schema/a.yaml:6: tables.customer.fields.status.options: there is no option list 'statuses' under choices:\n"
        "    hint: declare it under choices: or list the options inline\n"
        "schema/a.yaml:7: tables.customer.list: 'nme' is not a field of customer\n"
        "    hint: did you mean 'name'? known fields: name, status\n"
        "schema/b.yaml:4: tables.contact.fields.customer.to: links to a table 'custmer' that does not exist\n"
        "    hint: did you mean 'customer'? known tables: customer, contact\n"
        "4 problems found in the schema; nothing was started.")


def test_yaml_booleans_numbers_and_duplicate_keys_get_hints() -> None:
    report = problems({"s.yaml": (
        "tables:\n"
        "  t:\n"
        "    fields:\n"
        "      answer:\n"
        "        type: choice\n"
        "        options:\n"
        "          - {key: yes, label: 是}\n"
        "          - {key: '0', label: 否}\n"
        "        default: no\n"
        "      code: {type: string, default: 010}\n"
        "      code: {type: integer}\n")})
    assert "s.yaml:7: tables.t.fields.answer.options[0].key: expected text, got the boolean true (written yes)\n" \
           "    hint: YAML reads a bare yes as the boolean true (yes/no/on/off become true/false); quote it: 'yes'" \
           in report
    assert "s.yaml:9: tables.t.fields.answer.default: default 'no' is not one of the options\n" \
           "    hint: YAML reads a bare no as the boolean false (yes/no/on/off become true/false); quote it: 'no'" \
           in report
    assert "s.yaml:10: tables.t.fields.code.default: default the number 8 is not valid: expected text\n" \
           "    hint: YAML reads 010 as the number 8; quote it: '010'" in report
    assert "s.yaml:11: tables.t.fields.code: duplicate key 'code'\n" \
           "    hint: it is already defined on line 10; YAML would silently keep only the last one, " \
           "so remove or rename one of them" in report


def test_shape_mistakes() -> None:
    report = problems({"s.yaml": (
        "tables:\n"
        "  Customer Table:\n"
        "    fields: {name: {type: string}}\n"
        "  t:\n"
        "    lable: 表\n"
        "    fields:\n"
        "      id: {type: integer}\n"
        "      amount: {type: money, max_length: 5, min: abc}\n"
        "      status: {type: choice, options: [a, b], default: c}\n"
        "      parent: {type: link}\n"
        "      owner: {type: user, on_delete: cascade}\n"
        "      color: {type: choice, options: [{key: x, color: red}, {color: blue}]}\n")})
    expected = [
        "s.yaml:2: tables.Customer Table: 'Customer Table' is not a valid key\n    hint: keys are lower_snake_case",
        "s.yaml:5: tables.t.lable: unknown key 'lable'\n    hint: did you mean 'label'?",
        "s.yaml:7: tables.t.fields.id: 'id' is reserved for the system\n    hint: rename the field, e.g. 't_id'",
        "s.yaml:8: tables.t.fields.amount.max_length: unknown key 'max_length'\n"
        "    hint: known keys for a money field:",
        "s.yaml:8: tables.t.fields.amount.min: min 'abc' is not a valid money value",
        "s.yaml:9: tables.t.fields.status.default: default 'c' is not one of the options\n"
        "    hint: known options: a, b",
        "s.yaml:10: tables.t.fields.parent.to: a link field needs 'to: <table>'",
        "s.yaml:11: tables.t.fields.owner.on_delete: on_delete: cascade is not allowed on a user field",
        "s.yaml:12: tables.t.fields.color.options[1]: an option needs a key",
    ]
    for line in expected:
        assert line in report, line


def test_yaml_syntax_errors_name_the_line() -> None:
    report = problems({"s.yaml": "tables:\n  t:\n    fields: {name: {type: string}\n"})
    assert report == ("s.yaml:4: YAML syntax error: did not find expected ',' or '}'\n"
                      "    hint: check the indentation and that every ':' is followed by a space\n"
                      "1 problem found in the schema; nothing was started.")


def test_an_unquoted_hex_colour_is_explained() -> None:
    report = problems({"s.yaml": "choices:\n  c:\n    - {key: x, color: red}\n    - key: y\n      color: #fff\n"
                                 "tables:\n  t:\n    fields: {c: {type: choice, options: c}}\n"})
    assert report.startswith("s.yaml:5: choices.c[1].color: the colour is empty\n"
                             "    hint: quote hex colours, e.g. color: '#52c41a' (an unquoted # starts a comment)")


def test_missing_or_empty_schema_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as missing:
        load_schema(tmp_path / "nope")
    assert "the schema directory does not exist" in str(missing.value)
    with pytest.raises(SchemaError) as empty:
        load_schema(tmp_path)
    assert "the schema directory holds no .yaml files" in str(empty.value)


def test_tables_and_choices_merge_across_files(tmp_path: Path) -> None:
    (tmp_path / "choices.yaml").write_text("choices:\n  level: [low, high]\n", encoding="utf-8")
    (tmp_path / "t.yaml").write_text("tables:\n  t:\n    fields:\n      level: {type: choice, options: level}\n",
                                     encoding="utf-8")
    (tmp_path / "u.yaml").write_text("tables:\n  t:\n    fields: {x: {type: string}}\n", encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        load_schema(tmp_path)
    report = str(caught.value)
    assert "u.yaml:2: tables.t: table 't' is declared twice\n    hint: it is also declared in " in report
    (tmp_path / "u.yaml").unlink()
    schema = load_schema(tmp_path)
    assert schema.table("t").field("level").choices.keys == ("low", "high")


def test_the_default_schema_is_valid() -> None:
    schema = load_schema(Path(__file__).resolve().parent.parent / "schema")
    keys = {t.key for t in schema.tables}
    assert {"customer", "contact", "product", "order", "order_line", "invoice", "payment", "feedback",
            "follow_up"} <= keys
    for table, field in [("customer", "name"), ("customer", "uscc"), ("customer", "status"), ("customer", "grade"),
                         ("customer", "owner"), ("contact", "customer"), ("contact", "name"), ("contact", "mobile"),
                         ("product", "name"), ("product", "cas_number"), ("product", "formula"),
                         ("product", "process_notes"), ("order", "number"), ("order", "customer"),
                         ("order_line", "order"), ("order_line", "product")]:
        assert schema.table(table).has_field(field), f"{table}.{field}"


def test_renames_and_column_lengths_are_checked() -> None:
    long_key = "a" * 62
    report = problems({"s.yaml": (
        "tables:\n"
        "  t:\n"
        "    fields:\n"
        "      name: {type: string}\n"
        "      title: {type: string, renamed_from: name}\n"
        "      code: {type: string, renamed_from: old code}\n"
        f"      {long_key}: {{type: link, to: t}}\n"
        "  u:\n"
        "    renamed_from: t\n"
        "    fields: {a: {type: string, renamed_from: a}}\n")})
    expected = [
        "s.yaml:5: tables.t.fields.title.renamed_from: 'name' is still declared in t\n"
        "    hint: remove 'name' (its data moves to 'title'), or drop renamed_from",
        "s.yaml:6: tables.t.fields.code.renamed_from: 'old code' is not a valid key",
        f"s.yaml:7: tables.t.fields.{long_key}: its database column '{long_key}_id' is longer than 63 characters, "
        "the limit of PostgreSQL and MariaDB\n    hint: shorten the key to at most 60 characters",
        "s.yaml:9: tables.u.renamed_from: 't' is still declared in the schema",
        "s.yaml:10: tables.u.fields.a.renamed_from: 'a' cannot be renamed from itself",
    ]
    for line in expected:
        assert line in report, (line, report)
