"""The `compute:` language: arithmetic over a record's fields and aggregates over the records that
link to it, parsed into a small immutable tree (no Python eval) that compiles to SQL (app.models.computed)
and evaluates in Python (`evaluate`, for a record's own fields).

    quantity * unit_price                          arithmetic: + - * / ( ) numbers round(x, n)
    sum(order_line.amount)                         sum min max avg of a field of the linking records
    count(order_line)                              how many records link here
    sum(payment.outstanding where status != 'paid')     where: = != < <= > >= in (...) not in (...) and or
    sum(payment[invoice].amount_due)               [link]: which link of payment, when it has several here
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

AGGREGATES = ("sum", "count", "min", "max", "avg")
CLOCK_FUNCTIONS = ("today", "now")
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
KEYWORDS = ("where", "and", "or", "not", "in")


class ExpressionError(ValueError):
    """A compute expression that cannot be read: the message and the 0-based position it points at."""

    def __init__(self, message: str, position: int, hint: str = ""):
        super().__init__(message)
        self.message, self.position, self.hint = message, position, hint


@dataclass(frozen=True)
class Number:
    value: Decimal


@dataclass(frozen=True)
class Text:
    """A quoted string: an option key (or a text value) in a where condition."""

    value: str


@dataclass(frozen=True)
class Truth:
    value: bool


@dataclass(frozen=True)
class Field:
    """A field of the record (or, inside a where, of the aggregated records)."""

    key: str
    position: int = 0


@dataclass(frozen=True)
class Negative:
    operand: Expr


@dataclass(frozen=True)
class Arithmetic:
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Round:
    operand: Expr
    places: int


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >= in notin
    left: Expr
    right: Expr | tuple[Expr, ...]


@dataclass(frozen=True)
class Logical:
    op: str  # and or
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Aggregate:
    """sum/min/max/avg of a field, or count, of the records of `table` whose `link` points here."""

    function: str
    table: str
    link: str | None  # None: the table's only link to here (checked against the schema)
    field: str | None  # None for count
    where: Condition | None = None
    position: int = 0


@dataclass(frozen=True)
class DateValue:
    """A day: what `today`, `today + 30` or `today - 7` stand for on the day a condition is evaluated."""

    value: datetime.date


Expr = Number | Text | Truth | Field | Negative | Arithmetic | Round | Aggregate | DateValue
Condition = Compare | Logical

TOKEN = re.compile(r"""\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<text>'[^']*'|"[^"]*")
                   |(?P<op><=|>=|!=|==|[-+*/(),.<>=\[\]]))""", re.VERBOSE)


def tokens(source: str) -> list[tuple[str, str, int]]:
    """Return (kind, text, position) of each token of `source`; ExpressionError for anything else."""
    found, at = [], 0
    while at < len(source):
        match = TOKEN.match(source, at)
        if match is None or match.end() == at:
            if not source[at:].strip():
                break
            bad = at + len(source[at:]) - len(source[at:].lstrip())
            raise ExpressionError(f"unexpected character '{source[bad]}'", bad,
                                  "use field keys, numbers, + - * / ( ), and 'quoted' option keys")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind), match.start(kind)))
        at = match.end()
    found.append(("end", "", len(source)))
    return found


class Reader:
    """A recursive-descent reader over the tokens of one expression."""

    def __init__(self, source: str):
        self.source = source
        self.items = tokens(source)
        self.at = 0

    @property
    def token(self) -> tuple[str, str, int]:
        return self.items[self.at]

    def take(self) -> tuple[str, str, int]:
        token = self.items[self.at]
        self.at = min(self.at + 1, len(self.items) - 1)
        return token

    def accept(self, text: str) -> bool:
        if self.token[0] in ("op", "name") and self.token[1].lower() == text:
            self.take()
            return True
        return False

    def expect(self, text: str, what: str) -> None:
        if not self.accept(text):
            raise self.error(f"expected {what}")

    def error(self, message: str, hint: str = "") -> ExpressionError:
        kind, text, position = self.token
        shown = "the end" if kind == "end" else f"'{text}'"
        return ExpressionError(f"{message}, found {shown}", position, hint)

    def whole(self) -> Expr:
        expr = self.sum()
        if self.token[0] != "end":
            raise self.error("expected an operator (+ - * /) or the end")
        return expr

    def sum(self) -> Expr:
        expr = self.product()
        while self.token[0] == "op" and self.token[1] in ("+", "-"):
            op = self.take()[1]
            expr = Arithmetic(op, expr, self.product())
        return expr

    def product(self) -> Expr:
        expr = self.unary()
        while self.token[0] == "op" and self.token[1] in ("*", "/"):
            op = self.take()[1]
            expr = Arithmetic(op, expr, self.unary())
        return expr

    def unary(self) -> Expr:
        if self.accept("-"):
            return Negative(self.unary())
        return self.atom()

    def atom(self) -> Expr:
        kind, text, position = self.token
        if kind == "number":
            self.take()
            return Number(Decimal(text))
        if kind == "text":
            raise self.error("a quoted text can only be compared in a where condition",
                             "e.g. sum(payment.outstanding where status != 'paid')")
        if self.accept("("):
            expr = self.sum()
            self.expect(")", "')'")
            return expr
        if kind != "name":
            raise self.error("expected a field, a number or '('")
        self.take()
        name = text.lower()
        if self.token[1] != "(":
            if name in ("true", "false"):
                return Truth(name == "true")
            return Field(self.path(text), position)
        if name in CLOCK_FUNCTIONS:
            raise ExpressionError(f"{name}() changes every day, but a computed value is stored when its record "
                                  "is written", position, "compare dates with today in a list filter or a colour "
                                  "rule instead of a stored compute")
        if name == "round":
            return self.rounded()
        if name in AGGREGATES:
            return self.aggregate(name, position)
        raise ExpressionError(f"unknown function '{text}'", position,
                              "known functions: round, " + ", ".join(AGGREGATES))

    def path(self, first: str) -> str:
        """Return a field key, or a path through links (customer.credit_limit) where only rules read one."""
        steps = [first]
        while self.token[1] == "." and self.items[self.at + 1][0] == "name":
            self.take()
            steps.append(self.take()[1])
        return ".".join(steps)

    def rounded(self) -> Round:
        self.expect("(", "'(' after round")
        operand = self.sum()
        self.expect(",", "',' and the number of decimal places, e.g. round(x, 2)")
        kind, text, _ = self.take()
        if kind != "number" or "." in text or int(text) > 10:
            self.at -= 1
            raise self.error("expected the number of decimal places (0 to 10)")
        self.expect(")", "')'")
        return Round(operand, int(text))

    def aggregate(self, function: str, position: int) -> Aggregate:
        self.expect("(", f"'(' after {function}")
        kind, table, _ = self.take()
        if kind != "name":
            self.at -= 1
            example = f"{function}(order_line" + (")" if function == "count" else ".amount)")
            raise self.error(f"expected a table, e.g. {example}")
        link = None
        if self.accept("["):
            kind, link, _ = self.take()
            if kind != "name":
                self.at -= 1
                raise self.error("expected the link field, e.g. [order]")
            self.expect("]", "']'")
        field = None
        if self.accept("."):
            kind, field, _ = self.take()
            if kind != "name":
                self.at -= 1
                raise self.error("expected a field after '.'")
        if function != "count" and field is None:
            raise self.error(f"{function} needs a field: {function}({table}.<field>)")
        where = self.condition() if self.accept("where") else None
        self.expect(")", "')'" + ("" if where else " or where"))
        return Aggregate(function, table, link, field, where, position)

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.accept("or"):
            left = Logical("or", left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.comparison()
        while self.accept("and"):
            left = Logical("and", left, self.comparison())
        return left

    def comparison(self) -> Condition:
        if self.token[1] == "(":
            saved = self.at
            self.take()
            try:
                inner = self.condition()
                self.expect(")", "')'")
                return inner
            except ExpressionError:
                self.at = saved  # not a bracketed condition: an arithmetic operand in brackets
        left = self.operand()
        negated = self.accept("not")
        if self.accept("in"):
            self.expect("(", "'(' and a list, e.g. in ('paid', 'void')")
            values = [self.operand()]
            while self.accept(","):
                values.append(self.operand())
            self.expect(")", "')'")
            return Compare("notin" if negated else "in", left, tuple(values))
        if negated:
            raise self.error("expected 'in' after 'not'")
        kind, op, _ = self.token
        op = "=" if op == "==" else op
        if kind != "op" or op not in COMPARISONS:
            raise self.error("expected a comparison (= != < <= > >= in)")
        self.take()
        return Compare(op, left, self.operand())

    def operand(self) -> Expr:
        kind, text, _ = self.token
        if kind == "text":
            self.take()
            return Text(text[1:-1])
        return self.sum()


def parse_compute(source: str) -> Expr:
    """Return the tree of a compute expression; ExpressionError naming what is wrong and where."""
    if not source.strip():
        raise ExpressionError("the expression is empty", 0, "e.g. compute: quantity * unit_price")
    return Reader(source).whole()


def parse_condition(source: str) -> Condition:
    """Return the tree of a condition over a record's fields (outstanding > 0 and status != 'paid');
    ExpressionError naming what is wrong and where."""
    if not source.strip():
        raise ExpressionError("the condition is empty", 0, "e.g. when: outstanding > 0 and status != 'paid'")
    reader = Reader(source)
    found = reader.condition()
    if reader.token[0] != "end":
        raise reader.error("expected and, or, or the end of the condition")
    return found


# -- reading a tree ----------------------------------------------------------------------------

def walk(node: Any) -> Iterator[Any]:
    """Yield every node of an expression or condition tree (aggregates included, their where too)."""
    yield node
    if isinstance(node, (Arithmetic, Logical)):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Compare):
        yield from walk(node.left)
        for item in node.right if isinstance(node.right, tuple) else (node.right,):
            yield from walk(item)
    elif isinstance(node, (Negative, Round)):
        yield from walk(node.operand)
    elif isinstance(node, Aggregate) and node.where is not None:
        yield from walk(node.where)


TODAY = "today"


def dated(node: Any, today: datetime.date) -> Any:
    """Return a condition with `today`, `today + n` and `today - n` (days) put as the days they are."""
    if isinstance(node, Field) and node.key == TODAY:
        return DateValue(today)
    if isinstance(node, Arithmetic) and isinstance(node.left, Field) and node.left.key == TODAY \
            and node.op in ("+", "-") and isinstance(node.right, Number):
        days = int(node.right.value) * (1 if node.op == "+" else -1)
        return DateValue(today + datetime.timedelta(days=days))
    if isinstance(node, Arithmetic):
        return Arithmetic(node.op, dated(node.left, today), dated(node.right, today))
    if isinstance(node, Logical):
        return Logical(node.op, dated(node.left, today), dated(node.right, today))
    if isinstance(node, Compare):
        right = tuple(dated(v, today) for v in node.right) if isinstance(node.right, tuple) \
            else dated(node.right, today)
        return Compare(node.op, dated(node.left, today), right)
    if isinstance(node, Negative):
        return Negative(dated(node.operand, today))
    return node


def own_fields(expr: Expr) -> list[Field]:
    """Return the fields of the record itself that `expr` reads (not those inside aggregates)."""
    found: list[Field] = []

    def visit(node: Any) -> None:
        if isinstance(node, Field):
            found.append(node)
        elif isinstance(node, Arithmetic):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, (Negative, Round)):
            visit(node.operand)
    visit(expr)
    return found


def aggregates(expr: Expr | Condition) -> list[Aggregate]:
    """Return the aggregates of `expr` (or of a condition)."""
    return [node for node in walk(expr) if isinstance(node, Aggregate)]


def aggregate_fields(aggregate: Aggregate) -> list[Field]:
    """Return the fields of the aggregated table an aggregate reads (its field and its where's)."""
    fields = [Field(aggregate.field, aggregate.position)] if aggregate.field else []
    if aggregate.where is not None:
        fields += [node for node in walk(aggregate.where) if isinstance(node, Field)]
    return fields


# -- evaluating in Python ----------------------------------------------------------------------

def evaluate(expr: Expr, values: dict[str, Any]) -> Decimal | None:
    """Return the value of an expression without aggregates over `values` (field key -> value);
    None when an input is empty or a division is by zero, as SQL gives NULL."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Field):
        value = values.get(expr.key)
        if value is None or isinstance(value, bool):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(expr, Negative):
        inner = evaluate(expr.operand, values)
        return None if inner is None else -inner
    if isinstance(expr, Round):
        inner = evaluate(expr.operand, values)
        return None if inner is None else inner.quantize(Decimal(1).scaleb(-expr.places), ROUND_HALF_UP)
    if isinstance(expr, Arithmetic):
        left, right = evaluate(expr.left, values), evaluate(expr.right, values)
        if left is None or right is None:
            return None
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        return None if right == 0 else left / right
    raise ValueError(f"{type(expr).__name__} cannot be evaluated without the database")


def normalised(source: str) -> str:
    """Return the expression as one canonical line, spaced as it is documented (how a change of
    `compute:` is recognised, and how messages quote it)."""
    out, previous = "", None
    for kind, text, _ in tokens(source):
        if kind == "end":
            break
        if previous is not None:
            before_kind, before = previous
            tight = before in ("(", "[", ".") or text in (")", "]", ".", ",") or (
                text in ("(", "[") and before_kind == "name" and before.lower() not in KEYWORDS)
            out += "" if tight else " "
        out += text
        previous = (kind, text)
    return out


def as_json(expr: Any) -> Any:
    """Return an expression without aggregates as plain data for the browser's live preview
    (app/static/crm/forms.js evaluates it as the user types; the server's value is the truth)."""
    if isinstance(expr, Number):
        return {"n": str(expr.value)}
    if isinstance(expr, Field):
        return {"f": expr.key}
    if isinstance(expr, Negative):
        return {"neg": as_json(expr.operand)}
    if isinstance(expr, Round):
        return {"round": as_json(expr.operand), "places": expr.places}
    if isinstance(expr, Arithmetic):
        return {"op": expr.op, "l": as_json(expr.left), "r": as_json(expr.right)}
    return None
