"""A table's `colors:`: conditional row and cell colours, beside the options' own colours. Parsed
and checked here (every problem with file, line and a hint); worked out in SQL by app.models.colours.

    payment:
      colors:
        overdue:
          label: {zh: 逾期未收, en: Overdue}
          when: "due_date < today and outstanding > 0"
          color: "#f5222d"           # the whole row
        expiring:
          label: {zh: 30 天内到期, en: Due within 30 days}
          when: "due_date <= today + 30 and outstanding > 0"
          color: "#fa8c16"
          field: due_date            # only this field's cell
"""
from __future__ import annotations

import datetime
import re

from . import expressions
from .issues import Issue
from .model import ColourSpec, Label, SchemaSpec
from .parse import Parser, did_you_mean
from .rules import condition_problems
from .yamlsrc import Node

COLOUR_KEYS = ("label", "when", "color", "field")
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def parse_colours(parser: Parser, node: Node, table_key: str, path: str) -> tuple[ColourSpec, ...]:
    """Return the colour rules declared under a table's `colors:` (shape problems go to the parser)."""
    return tuple(parser.named_entries(
        node, path, "colour rules by name, e.g. colors: {overdue: {when: ..., color: '#f5222d'}}",
        lambda entry, key, entry_path: parse_colour(parser, entry, table_key, key, entry_path)))


def parse_colour(parser: Parser, node: Node, table_key: str, key: str, path: str) -> ColourSpec | None:
    if not parser.expect_map(node, path, "a colour rule like {when: due_date < today, color: '#f5222d'}"):
        return None
    parser.unknown_keys(node, path, COLOUR_KEYS, "colour rule keys")
    values = node.value
    for name, example in (("when", "when: due_date < today and outstanding > 0"), ("color", "color: '#f5222d'")):
        if name not in values:
            parser.error(node, f"{path}.{name}", f"a colour rule needs {name}:", f"e.g. {example}")
    if "when" not in values or "color" not in values:
        return None
    source, color = parser.text(values["when"], f"{path}.when"), parser.text(values["color"], f"{path}.color")
    if source is None or color is None:
        return None
    if not HEX_COLOUR.fullmatch(color):
        parser.error(values["color"], f"{path}.color", f"'{color}' is not a colour of the form '#rrggbb'",
                     "quote a six-digit hex colour like '#f5222d' (exports fill cells with it; an unquoted # "
                     "starts a comment)")
        return None
    try:
        condition = expressions.parse_condition(source)
    except expressions.ExpressionError as exc:
        parser.error(values["when"], f"{path}.when", f"{exc.message} (at character {exc.position + 1} of "
                     f"'{source}')", exc.hint or "e.g. when: due_date < today and outstanding > 0")
        return None
    return ColourSpec(
        key=key, table=table_key, when=source, condition=condition, color=color.lower(),
        label=parser.label(values["label"], f"{path}.label") if "label" in values else Label(key, key),
        field=parser.text(values["field"], f"{path}.field") if "field" in values else None,
        file=node.file, line=node.line)


def check_colours(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of every table's colour rules: their conditions (fields, paths through
    links, options, `today`) and the field a cell rule colours."""
    issues: list[Issue] = []
    for table in schema.tables:
        for colour in table.colors:
            path = f"tables.{table.key}.colors.{colour.key}"
            condition = expressions.dated(colour.condition, datetime.date.today())
            problems = condition_problems(schema, table, condition)
            problems += [("today can only be compared, or moved by a number of days (today + 30)",
                          "e.g. when: due_date < today + 30")
                         for node in expressions.walk(condition) if isinstance(node, (expressions.Arithmetic,
                                                                                      expressions.Negative))
                         and any(isinstance(n, expressions.DateValue) for n in expressions.walk(node))]
            issues += [Issue(colour.file, colour.line, f"{path}.when", message, hint) for message, hint in problems]
            if colour.field is not None and not table.has_field(colour.field):
                issues.append(Issue(colour.file, colour.line, f"{path}.field",
                                    f"table '{table.key}' has no field '{colour.field}'",
                                    did_you_mean(colour.field, [f.key for f in table.fields], "fields")))
    return issues
