"""A table's `rules:`: conditions every write of a record must pass, or confirm. Parsed and checked
here (every problem with file, line and a hint); enforced as the ORM writes by app.models.rules.

    order:
      rules:
        credit_limit:
          label: {zh: 信用额度, en: Credit limit}
          when: "status != 'draft' and total + customer.open_receivables > customer.credit_limit"
          refuse: {zh: "超出信用额度 {customer.credit_limit} 元", en: "Over the limit of {customer.credit_limit}"}
          unless_roles: [finance]     # their writes pass (and are audited)
        large_order:
          when: total > 500000
          warn: {zh: "订单金额 {total} 元，请确认", en: "The order totals {total}; confirm it"}
"""
from __future__ import annotations

from typing import Any

from . import expressions
from .checks import NUMERIC_TYPES
from .issues import Issue
from .model import FieldSpec, Label, RuleSpec, SchemaSpec, TableSpec
from .parse import Parser, did_you_mean
from .reminders import PLACEHOLDER, placeholder_problem
from .yamlsrc import Node

RULE_KEYS = ("label", "when", "refuse", "warn", "unless_roles")
ACTIONS = ("refuse", "warn")


def parse_rules(parser: Parser, node: Node, table_key: str, path: str) -> tuple[RuleSpec, ...]:
    """Return the rules declared under a table's `rules:` (shape problems go to the parser)."""
    return tuple(parser.named_entries(
        node, path, "rules by name, e.g. rules: {credit_limit: {when: ..., refuse: ...}}",
        lambda entry, key, entry_path: parse_rule(parser, entry, table_key, key, entry_path)))


def parse_rule(parser: Parser, node: Node, table_key: str, key: str, path: str) -> RuleSpec | None:
    example = "a rule like {when: total > 500000, warn: {zh: 大额订单, en: Large order}}"
    if not parser.expect_map(node, path, example):
        return None
    parser.unknown_keys(node, path, RULE_KEYS, "rule keys")
    values = node.value
    actions = [a for a in ACTIONS if a in values]
    if "when" not in values:
        parser.error(node, f"{path}.when", "a rule needs when: (the condition it catches)",
                     "e.g. when: total + customer.open_receivables > customer.credit_limit")
    if len(actions) != 1:
        parser.error(node, path, "a rule needs one of refuse: or warn: (its message)" if not actions
                     else "a rule either refuses or warns, not both",
                     "refuse: stops the write; warn: lets the user confirm it")
    if "when" not in values or len(actions) != 1:
        return None
    source = parser.text(values["when"], f"{path}.when")
    if source is None:
        return None
    try:
        condition = expressions.parse_condition(source)
    except expressions.ExpressionError as exc:
        parser.error(values["when"], f"{path}.when", f"{exc.message} (at character {exc.position + 1} of "
                     f"'{source}')", exc.hint or "e.g. when: total + customer.open_receivables > customer.credit_limit")
        return None
    action = actions[0]
    return RuleSpec(
        key=key, table=table_key, when=source, condition=condition, action=action,
        label=parser.label(values["label"], f"{path}.label") if "label" in values else Label(key, key),
        message=parser.label(values[action], f"{path}.{action}"),
        unless_roles=parser.key_list(values["unless_roles"], f"{path}.unless_roles") if "unless_roles" in values
        else (),
        file=node.file, line=node.line)


def check_rules(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of every table's rules: fields and paths of their conditions, option keys,
    roles and the placeholders of their messages."""
    issues: list[Issue] = []
    for table in schema.tables:
        for rule in table.rules:
            def issue(where: str, message: str, hint: str = "", r: RuleSpec = rule) -> None:
                issues.append(Issue(r.file, r.line, f"tables.{r.table}.rules.{r.key}.{where}", message, hint))
            for message, hint in condition_problems(schema, table, rule.condition):
                issue("when", message, hint)
            for role in rule.unless_roles:
                if role not in schema.roles and role != "admin":
                    issue("unless_roles", f"there is no role '{role}'",
                          did_you_mean(role, sorted(schema.roles), "roles") if schema.roles
                          else "declare it under roles:")
            template = rule.message.zh + rule.message.en
            for placeholder in dict.fromkeys(PLACEHOLDER.findall(template)):
                problem = placeholder_problem(schema, table, placeholder)
                if problem:
                    issue(rule.action, *problem)
    return issues


def path_field(schema: SchemaSpec, table: TableSpec, path: str) -> tuple[FieldSpec | None, tuple[str, str]]:
    """Return the field a path names (total, customer.credit_limit, order.customer.grade), or None and
    (message, hint) saying why it names none."""
    current = table
    steps = path.split(".")
    for n, step in enumerate(steps):
        if not current.has_field(step):
            return None, (f"'{step}' is not a field of {current.key}" + (f" (in '{path}')" if len(steps) > 1 else ""),
                          did_you_mean(step, [f.key for f in current.fields], "fields"))
        spec = current.field(step)
        if n == len(steps) - 1:
            return spec, ("", "")
        if spec.type != "link":
            return None, (f"'{step}' is a {spec.type} field, not a link, so '{path}' leads nowhere",
                          "a dotted path follows link fields: customer.credit_limit")
        current = schema.table(spec.to or "")
    raise AssertionError("a path has at least one step")


KINDS = {"number": ("数字", "a number"), "date": ("日期", "a date"), "text": ("文本", "text"),
         "boolean": ("是/否", "yes or no"), "record": ("记录", "a record")}


def kind_of(schema: SchemaSpec, table: TableSpec, expr: Any) -> str | None:
    """Return what an operand is (number, date, text, boolean, record); None when it names no field."""
    if isinstance(expr, expressions.Field):
        spec, _ = path_field(schema, table, expr.key)
        if spec is None:
            return None
        if spec.type in NUMERIC_TYPES:
            return "number"
        if spec.type in ("date", "datetime"):
            return "date"
        if spec.type == "boolean":
            return "boolean"
        return "record" if spec.is_relation else "text"
    if isinstance(expr, expressions.Text):
        return "text"
    if isinstance(expr, expressions.Truth):
        return "boolean"
    if isinstance(expr, expressions.DateValue):
        return "date"
    return "number"  # numbers, arithmetic, negation, round


def kind_problems(schema: SchemaSpec, table: TableSpec, compare: expressions.Compare) -> list[tuple[str, str]]:
    """Return the problems of a comparison of unlike values (text with a number, a date with text):
    the databases refuse them (PostgreSQL) or compare them wrongly (SQLite)."""
    problems = []
    arithmetic = [n for side in (compare.left, *(compare.right if isinstance(compare.right, tuple) else
                                                 (compare.right,)))
                  for n in expressions.walk(side) if isinstance(n, expressions.Arithmetic | expressions.Negative)]
    for node in arithmetic:
        for operand in (node.left, node.right) if isinstance(node, expressions.Arithmetic) else (node.operand,):
            kind = kind_of(schema, table, operand)
            if kind not in (None, "number") and not isinstance(operand, expressions.DateValue):
                shown = operand.key if isinstance(operand, expressions.Field) else "a value"
                problems.append((f"'{shown}' is {KINDS[kind][1]}, which cannot be calculated with",
                                 "+ - * / work on number fields"))
    left = kind_of(schema, table, compare.left)
    for value in compare.right if isinstance(compare.right, tuple) else (compare.right,):
        right = kind_of(schema, table, value)
        if left and right and left != right:
            problems.append((f"{describe(compare.left)} is {KINDS[left][1]} and {describe(value)} is "
                             f"{KINDS[right][1]}; a comparison needs two of a kind",
                             "compare numbers with numbers, dates with dates (or today), options with "
                             "'quoted' keys"))
    return problems


def describe(expr: Any) -> str:
    if isinstance(expr, expressions.Field):
        return f"'{expr.key}'"
    if isinstance(expr, expressions.Number):
        return str(expr.value)
    if isinstance(expr, expressions.Text):
        return f"'{expr.value}'"
    if isinstance(expr, expressions.DateValue):
        return "today"
    return "the calculation"


def condition_problems(schema: SchemaSpec, table: TableSpec, condition: expressions.Condition
                       ) -> list[tuple[str, str]]:
    """Return (message, hint) for each problem of a rule's condition: unknown fields or paths,
    encrypted fields, aggregates, and option keys a choice field does not have."""
    problems: list[tuple[str, str]] = []
    for node in expressions.walk(condition):
        if isinstance(node, expressions.Aggregate):
            problems.append((f"a rule compares fields, not {node.function}() of other records",
                             f"declare a computed field (compute: {node.function}(...)) and compare that"))
        elif isinstance(node, expressions.Field):
            spec, problem = path_field(schema, table, node.key)
            if spec is None:
                problems.append(problem)
            elif spec.encrypted:
                problems.append((f"'{node.key}' is encrypted; a rule cannot compare it",
                                 "compare fields that are not encrypted"))
        if isinstance(node, expressions.Compare):
            problems += kind_problems(schema, table, node)
        if isinstance(node, expressions.Compare) and isinstance(node.left, expressions.Field):
            spec, _ = path_field(schema, table, node.left.key)
            if spec is None or spec.choices is None:
                continue
            for value in node.right if isinstance(node.right, tuple) else (node.right,):
                if isinstance(value, expressions.Text) and value.value not in spec.choices.keys:
                    problems.append((f"'{value.value}' is not an option of {node.left.key}",
                                     did_you_mean(value.value, spec.choices.keys, "options")))
    return problems
