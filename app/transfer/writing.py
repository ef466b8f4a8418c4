"""Writing an import's checked rows: a chunk at a time, each chunk flushed in a savepoint of the one
transaction, rolled back as a whole on any problem (and always on a dry run). A flush the database
refuses (a unique index, a contact of another customer) is retried row by row to name the row."""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from app.audit.capture import logged_values, plain
from app.models.problems import RecordProblem
from app.models.rules import RuleNeedsConfirming, check_rules, confirming
from app.schema import naming
from app.schema.model import FieldSpec, Label
from app.security.gate import assign_owner

from .batches import Written
from .problems import ImportCancelled
from .raw import RawBook, RawSheet

if TYPE_CHECKING:
    from .importer import Importer, PlannedRow

CHUNK = 500
READONLY = Label("您无权修改此字段（只读），请清空这一列或保持原值",
                 "you may not change this field (read-only); leave the column empty or as it is")
Staged = tuple["PlannedRow", Any, dict[str, Any]]  # (row, record, values before)


class Writer:
    """The writing half of one importer (its own sheet's rows)."""

    def __init__(self, importer: Importer):
        self.imp = importer

    @property
    def phase(self) -> str:
        return "check" if self.imp.request.dry_run else "write"

    def write_all(self, book: RawBook, sheet: RawSheet, rows: Iterator[PlannedRow],
                  child_sheets: list[tuple[str, RawSheet]]) -> None:
        """Check and write every row, the child sheets' after the sheet's own, in one transaction; roll
        back on any problem (and always on a dry run), else record the batch and commit."""
        imp = self.imp
        session = imp.session
        session.rollback()  # start from a clean transaction of our own
        batch_id = imp.open_batch()
        # likely duplicates are the import's own check (allow_duplicates), by file row and stored record
        with confirming(session, (), every=imp.request.confirm_rules, duplicates_checked=True):
            self.write_parts(book, sheet, rows, child_sheets, batch_id)

    def write_parts(self, book: RawBook, sheet: RawSheet, rows: Iterator[PlannedRow],
                    child_sheets: list[tuple[str, RawSheet]], batch_id: Any) -> None:
        imp = self.imp
        session, result = imp.session, imp.result
        try:
            parts = [(imp, sheet, self.stream(sheet, rows, 0))]
            done = imp.data_rows
            for child_key, child_sheet in child_sheets:
                child = imp.child_importer(book, child_key)
                child_rows = child.prepare(book, child_sheet)
                if child_rows is None:
                    continue
                parts.append((child, child_sheet, child.writer.stream(child_sheet, child_rows, done, imp.progress)))
                done += child.data_rows
                result.children[child_key] = child.counts["insert"]
            imp.progress(self.phase, done, done)
            self.refuse_duplicates()
            if not result.problems:
                self.check_reach(parts)
            if result.problems or imp.request.dry_run:
                session.rollback()
                return
            if imp.cancelled():
                raise ImportCancelled()
            imp.record_written({importer.table.key: written for importer, _, written in parts}, batch_id)
            result.batch_id = batch_id
            if imp.before_commit is not None:
                imp.before_commit(result)
            session.commit()
        except BaseException:
            session.rollback()
            result.batch_id = None
            raise

    def writing(self) -> bool:
        """Return True while rows are still written: no problem yet, and no likely duplicate refused."""
        imp = self.imp
        refused = imp.result.duplicates and not imp.request.allow_duplicates and not imp.request.dry_run
        return not imp.result.problems and not refused

    def refuse_duplicates(self) -> None:
        imp = self.imp
        if imp.result.duplicates and not imp.request.allow_duplicates and not imp.request.dry_run:
            count = len(imp.result.duplicates)
            imp.result.problem(Label(
                f"有 {count} 处可能与已有记录或本文件中的其他行重复，未导入；"
                "核对后勾选“仍然导入可能重复的行”（命令行：--allow-duplicates）",
                f"{count} likely duplicates of existing records or of other rows in this file were found and "
                "nothing was imported; check them, then allow likely duplicates (command line: --allow-duplicates)"))

    def stream(self, sheet: RawSheet, rows: Iterator[PlannedRow], offset: int,
               progress: Any = None) -> list[Written]:
        """Write the rows a chunk at a time while `writing()`; return what was written. A child sheet's
        rows get their parent's id (the parent's place in the file → its record's id)."""
        imp = self.imp
        report = progress or imp.progress
        written: list[Written] = []
        chunk: list[PlannedRow] = []

        def flush() -> None:
            if self.writing() and chunk:
                link, parent = imp.link_to_parent, imp.parent
                if link is not None and parent is not None:
                    for row in chunk:
                        row.values[link.key] = parent.record_ids.get(-row.values[link.key] - 1)
                written.extend(self.write_chunk(sheet, chunk))
            chunk.clear()
            report(self.phase, offset + imp.data_rows, max(offset + imp.expected, offset + imp.data_rows))
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                if imp.cancelled():
                    raise ImportCancelled()
                flush()
        flush()
        return written

    def write_chunk(self, sheet: RawSheet, chunk: list[PlannedRow]) -> list[Written]:
        """Stage and flush one chunk in a savepoint; when the flush fails, find the rows to blame.
        Rows are counted once their flush has succeeded."""
        imp = self.imp
        session = imp.session
        held = self.load_linked(chunk)  # noqa: F841 (held so that session.get finds them in the identity map)
        try:
            with session.begin_nested():
                stored = self.load_stored(chunk)
                with session.no_autoflush:
                    staged = [self.stage(sheet, row, stored) for row in chunk]
                check_rules(session)  # flushes, then the record rules: a refusal names its row below
            done = [s for s in staged if s is not None]
            counted = [row for row, s in zip(chunk, staged, strict=True) if s is not None or row.action == "unchanged"]
        except (RecordProblem, SQLAlchemyError):
            done, counted = [], []
            for row in chunk:
                row.action = "update" if row.record_id is not None else "insert"
                staged_row = self.stage_alone(sheet, row)
                if staged_row is not None:
                    done.append(staged_row)
                if staged_row is not None or row.action == "unchanged":
                    counted.append(row)
        parents = bool(imp.table.inline)  # a child sheet's rows find their parent's action and id by its place
        for row in counted:
            imp.counts[row.action] += 1
            if parents:
                imp.actions[row.place] = row.action
        found = []
        for row, obj, before in done:
            row.record_id = obj.id
            if parents:
                imp.record_ids[row.place] = obj.id
            # Only the id and the values before are kept: the flushed records may leave memory.
            found.append((row.row, row.action, obj.id,
                          logged_values(imp.model, obj.id, before) if row.action == "update" else None))
        return found

    def stage_alone(self, sheet: RawSheet, row: PlannedRow) -> Staged | None:
        """Stage and flush one row in its own savepoint; None (with a problem) when the database refuses it."""
        imp = self.imp
        try:
            with imp.session.begin_nested():
                stored = self.load_stored([row])
                with imp.session.no_autoflush:
                    staged = self.stage(sheet, row, stored)
                check_rules(imp.session)
            return staged
        except RuleNeedsConfirming as exc:
            imp.cell_problem(sheet, row.row, None, Label(
                f"{exc.label.zh}（如确认无误，勾选“确认规则提示”后重新导入；命令行：--confirm-rules）",
                f"{exc.label.en} (if that is right, tick \"confirm rule warnings\" and import again; command line: "
                "--confirm-rules)"))
        except RecordProblem as exc:
            imp.cell_problem(sheet, row.row, exc.field, exc.label)
        except SQLAlchemyError:
            imp.cell_problem(sheet, row.row, None, Label("数据库拒绝保存此行（可能与其他记录冲突）",
                                                         "the database refused this row (perhaps it conflicts with "
                                                         "another record)"))
        return None

    def load_linked(self, chunk: list[PlannedRow]) -> list[Any]:
        """Load, in one query per link, the records the chunk's rows link to; return them."""
        imp = self.imp
        wanted: dict[str, set[int]] = {}
        for row in chunk:
            for key, value in row.values.items():
                if value is not None and key in imp.lookups and not (isinstance(value, int) and value < 0):
                    wanted.setdefault(key, set()).add(value)
        loaded: list[Any] = []
        for key, ids in wanted.items():
            spec = imp.table.field(key)
            target: Any = imp.user_model if spec.type == "user" else imp.models.model(spec.to or "")
            loaded += imp.session.execute(sa.select(target).where(target.id.in_(sorted(ids)))).scalars().all()
        return loaded

    def load_stored(self, rows: list[PlannedRow]) -> dict[int, Any]:
        ids = [r.record_id for r in rows if r.record_id is not None]
        if not ids:
            return {}
        model = self.imp.model
        return {obj.id: obj for obj in self.imp.session.execute(sa.select(model).where(model.id.in_(ids))).scalars()}

    def stage(self, sheet: RawSheet, row: PlannedRow, stored: dict[int, Any]) -> Staged | None:
        """Put one row's values on a new or stored record; return (row, record, values before), or None
        when it changes nothing (its action becomes unchanged) or may not be written (a problem). A row
        of an export whose record changed since is refused only when it would change something."""
        imp = self.imp
        if row.action == "update":
            obj = stored.get(row.record_id or 0)
            if obj is None:
                imp.cell_problem(sheet, row.row, imp.key, Label("要更新的记录已被删除",
                                                                "the record to update was deleted meanwhile"))
                return None
        else:
            obj = imp.model()
        values = {key: self.as_stored(imp.table.field(key), value) for key, value in row.values.items()}
        changed = {key: new for key, new in values.items()
                   if row.action == "insert" or not same_value(imp.table.field(key), getattr(obj, key, None), new)}
        readonly = [spec for spec, value in row.readonly if row.action == "insert"
                    or not same_value(spec, getattr(obj, spec.key, None), self.as_stored(spec, value))]
        if row.action == "update" and not changed and not readonly:
            row.action = "unchanged"
            return None
        if row.action == "update" and not self.version_holds(sheet, row, obj):
            return None
        if readonly:
            imp.cell_problem(sheet, row.row, readonly[0].key, READONLY)
            return None
        before = {key: getattr(obj, key, None) for key in changed} if row.action == "update" else {}
        if row.action == "insert":
            imp.session.add(obj)  # before its links are set: the backrefs would add it half-made
        for key, new in changed.items():
            setattr(obj, key, new)
        if row.action == "insert":
            assign_owner(imp.models, imp.table.key, obj)
        return row, obj, before

    def version_holds(self, sheet: RawSheet, row: PlannedRow, obj: Any) -> bool:
        """Refuse a row of an exported file whose record changed after the export (its version moved on)."""
        stored = getattr(obj, naming.VERSION_COLUMN)
        if row.version is None or row.version == stored:
            return True
        self.imp.cell_problem(sheet, row.row, None, Label(
            f"这条记录在导出之后被修改过（导出时是第 {row.version} 版，现在是第 {stored} 版）；"
            "请重新导出，在新文件上修改后再导入",
            f"this record was changed after the export (version {row.version} then, {stored} now); export again "
            "and make the changes in the new file"))
        return False

    def as_stored(self, spec: FieldSpec, value: Any) -> Any:
        """Return a value as the record's attribute holds it: a link or user field holds the record."""
        imp = self.imp
        if spec.is_relation and value is not None:
            target = imp.user_model if spec.type == "user" else imp.models.model(spec.to or "")
            return imp.session.get(target, value)
        return value

    def check_reach(self, parts: list[tuple[Importer, RawSheet, list[Written]]]) -> None:
        """Refuse rows that, once written, are outside the rows the user may create or update (and, in
        the table imported into, import)."""
        imp = self.imp
        for importer, sheet, done in parts:
            for verb, action in (("create", "insert"), ("update", "update")):
                condition = importer.write_condition(verb)
                if condition is None:
                    continue
                rows = {pk: number for number, kind, pk, _ in done if kind == action}
                ids = sorted(rows)
                reached: set[int] = set()
                for start in range(0, len(ids), CHUNK):
                    reached |= {pk for (pk,) in imp.session.execute(
                        sa.select(importer.model.id).where(importer.model.id.in_(ids[start:start + CHUNK]), condition))}
                for pk in ids:
                    if pk not in reached:
                        imp.result.problem(Label(
                            "导入后这条记录将不在您可管理的范围内（例如负责人须为您本人）",
                            "after the import this record would be outside the records you may manage (for "
                            "example, you must be its owner)"), sheet.name, rows[pk])


def same_value(spec: FieldSpec, stored: Any, new: Any) -> bool:
    """Return True when an import's value equals the stored one (250000 is 250000.00; a record is its id)."""
    if isinstance(stored, Decimal) and isinstance(new, Decimal):
        return stored == new
    return bool(plain(spec, stored) == plain(spec, new))
