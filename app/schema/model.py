"""Validated, immutable spec objects built from the schema YAML."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.fields.values import Label as Label  # two-language text, defined with the value rules below

LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class OptionSpec:
    """One option of a choice list: stored key, label and an optional CSS colour."""

    key: str
    label: Label
    color: str | None = None


@dataclass(frozen=True)
class ChoiceListSpec:
    key: str
    options: tuple[OptionSpec, ...]
    file: str = ""
    line: int = 0

    def option(self, key: Any) -> OptionSpec | None:
        """Return the option stored as `key`, or None if the list no longer has it."""
        for opt in self.options:
            if opt.key == key:
                return opt
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(opt.key for opt in self.options)


# What an attachment takes unless its field says `accept:`: documents, sheets, images and archives a
# chemical company exchanges (SDS, COA, contracts, photos) — nothing a browser would run (.html, .svg).
ATTACHMENT_TYPES = ("pdf", "doc", "docx", "xls", "xlsx", "csv", "ppt", "pptx", "odt", "ods", "txt", "rtf",
                    "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "zip", "rar", "7z", "msg", "eml")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a table, as declared in YAML (after validation)."""

    key: str
    type: str
    label: Label
    help: Label | None = None
    required: bool = False
    unique: bool = False
    default: Any = None
    min: Any = None
    max: Any = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_message: Label | None = None
    readonly: bool = False
    index: bool = False
    choices: ChoiceListSpec | None = None
    to: str | None = None
    on_delete: str = "restrict"
    scale: int | None = None
    renamed_from: str | None = None
    encrypted: bool = False
    searchable: bool = False
    accept: tuple[str, ...] = ()  # attachment: the file extensions it takes (empty: ATTACHMENT_TYPES)
    compute: str | None = None  # the expression as written (normalised); see app.schema.expressions
    computed: Any = field(default=None, compare=False, hash=False)  # its parsed tree
    default_from: str | None = None  # "link.field": copied from the linked record when left empty
    match: str | None = None  # link: a field the picked record shares with this one (contact.customer)
    roles: tuple[str, ...] = ()  # user: only active users of these roles may be picked
    aliases: tuple[str, ...] = ()  # other headings an imported file may give this field's column
    file: str = ""
    line: int = 0

    @property
    def is_computed(self) -> bool:
        return self.compute is not None

    @property
    def accepted_files(self) -> tuple[str, ...]:
        """Return the extensions (lower case, no dot) an attachment field takes."""
        return self.accept or ATTACHMENT_TYPES

    @property
    def seals_value(self) -> bool:
        """True when the stored value itself is encrypted (an encrypted attachment's file is, its name not)."""
        return self.encrypted and self.type != "attachment"

    @property
    def is_relation(self) -> bool:
        return self.type in ("link", "user")


@dataclass(frozen=True)
class TableSpec:
    """One table: its fields in form order and how lists show it."""

    key: str
    label: Label
    fields: tuple[FieldSpec, ...]
    title: str
    list: tuple[str, ...]
    search: tuple[str, ...]
    filters: tuple[str, ...]
    order_by: str | None = None
    help: Label | None = None
    icon: str = "fa-table"
    renamed_from: str | None = None
    inline: tuple[str, ...] = ()  # child tables edited inside this table's add and edit forms
    rules: tuple[RuleSpec, ...] = ()  # checks every write must pass (app.models.rules)
    colors: tuple[ColourSpec, ...] = ()  # conditional row and cell colours (app.models.colours)
    duplicates: tuple[str, ...] = ()  # fields a likely duplicate shares, compared normalised (查重)
    file: str = ""
    line: int = 0
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    def line_of(self, key: str) -> int:
        """Return the line of a table-level key such as 'list', or the table's own line."""
        return self.lines.get(key, self.line)

    def field(self, key: str) -> FieldSpec:
        """Return the field called `key`; KeyError if there is none."""
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    def has_field(self, key: str) -> bool:
        return any(f.key == key for f in self.fields)


@dataclass(frozen=True)
class RowRule:
    """Which rows of a table a role reaches: all, own (a user field, maybe through links, is me), or
    those whose field has one of `values`, or one of the values the user has in `user_values`
    (e.g. staff.region: the regions in the user's rows of the staff table)."""

    kind: str  # "all" | "own" | "values"
    field: str | None = None  # own: a user field or a dotted path through links; values: the field
    values: tuple[str, ...] = ()
    user_values: str | None = None  # values: "<table>.<field>", read from that table's rows of the user


@dataclass(frozen=True)
class TableGrant:
    """What one role may do with one table."""

    table: str
    can: tuple[str, ...]
    rows: RowRule | None = None
    hide: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    show_only: tuple[str, ...] | None = None
    file: str = ""
    line: int = 0
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    def shown_fields(self, keys: Iterable[str]) -> set[str]:
        """Return the keys among `keys` this grant lets its role see: show_only, else all but hide."""
        if self.show_only is not None:
            return {k for k in keys if k in self.show_only}
        return {k for k in keys if k not in self.hide}


@dataclass(frozen=True)
class RoleSpec:
    """A role from the `roles:` section: its grants per table, and the roles it extends."""

    key: str
    label: Label
    extends: tuple[str, ...] = ()
    tables: dict[str, TableGrant] = field(default_factory=dict, compare=False, hash=False)
    audit: bool = False  # may open the audit log screen (entries of the tables it reads)
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class ColourSpec:
    """A colour rule: rows (or, with `field`, that field's cells) of records for which `condition`
    holds are shown in `color` in lists, on record pages and in exported workbooks; the label says
    why in the list's legend."""

    key: str
    table: str
    label: Label
    when: str
    color: str  # #rrggbb
    condition: Any = field(default=None, compare=False, hash=False)
    field: str | None = None
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class RuleSpec:
    """A record rule: when `condition` holds for a record a write creates or changes (over its fields,
    those of records it links to, and computed ones), the write is refused (`action` refuse) or must be
    confirmed (warn), with `message` ({field} filled in). Users of `unless_roles` (and admins) confirm
    instead of being refused."""

    key: str
    table: str
    label: Label
    when: str
    action: str  # refuse | warn
    message: Label
    condition: Any = field(default=None, compare=False, hash=False)
    unless_roles: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        """Return the rule's name across tables (order.credit_limit): what a confirmation names."""
        return f"{self.table}.{self.key}"


@dataclass(frozen=True)
class DoneSpec:
    """What 完成 of a reminder records: a new record of its table, with fields copied from the due
    record (`copy`), a date field set to the day it is done (`today`), and fields the user fills in
    (`ask`): a follow-up done records the visit and plans the next one."""

    copy: tuple[str, ...] = ()
    today: str | None = None
    ask: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class ReminderSpec:
    """A reminder: which records of a table fall due when (a date field, plus `after_days`), shown
    `notice_days` before; for whom (a user field of the record, through links, and/or roles); with
    which message ({field} filled in); only while `when` holds (a condition over the record)."""

    key: str
    label: Label
    table: str
    date: str
    message: Label
    notice_days: int = 0
    after_days: int = 0
    when: str | None = None  # as written; `condition` is its parsed tree
    condition: Any = field(default=None, compare=False, hash=False)
    to: str | None = None  # user field, or path to one: owner, customer.owner
    roles: tuple[str, ...] = ()
    done: DoneSpec | None = None  # 完成 adds a record (a follow-up's visit); None: 完成 only settles the item
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class SchemaSpec:
    """The whole schema: all tables (in file order), shared choice lists and roles."""

    tables: tuple[TableSpec, ...]
    choices: dict[str, ChoiceListSpec] = field(default_factory=dict)
    source_dir: str = ""
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    reminders: dict[str, ReminderSpec] = field(default_factory=dict)

    def table(self, key: str) -> TableSpec:
        """Return the table called `key`; KeyError if there is none."""
        for t in self.tables:
            if t.key == key:
                return t
        raise KeyError(key)

    def grants_of(self, role_key: str) -> dict[str, TableGrant]:
        """Return the role's grants per table, with those of the roles it extends (its own win)."""
        grants: dict[str, TableGrant] = {}
        seen: set[str] = set()

        def collect(key: str) -> None:
            if key in seen or key not in self.roles:
                return
            seen.add(key)
            for parent in self.roles[key].extends:
                collect(parent)
            grants.update(self.roles[key].tables)
        collect(role_key)
        return grants

    def audits(self, role_key: str) -> bool:
        """Return True when the role, or a role it extends, may open the audit log."""
        seen, todo = set(), [role_key]
        while todo:
            key = todo.pop()
            if key in seen or key not in self.roles:
                continue
            seen.add(key)
            if self.roles[key].audit:
                return True
            todo.extend(self.roles[key].extends)
        return False

    def children_of(self, table_key: str) -> list[tuple[TableSpec, FieldSpec]]:
        """Return (child table, link field) pairs for every link pointing at `table_key`."""
        return [(t, f) for t in self.tables for f in t.fields
                if f.type == "link" and f.to == table_key]
