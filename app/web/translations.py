"""Our Chinese/English catalog for Flask-AppBuilder's own texts, compiled from .po when needed."""
from __future__ import annotations

import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SOURCE_DIR = Path(__file__).resolve().parent.parent / "translations"


def compiled_translations_dir() -> str:
    """Return a directory of compiled .mo catalogs, (re)compiling any .po that is newer."""
    target = SOURCE_DIR if _writable(SOURCE_DIR) else Path(tempfile.gettempdir()) / "crm-translations"
    for po_path in SOURCE_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo_path = target / po_path.relative_to(SOURCE_DIR).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        tmp.replace(mo_path)
    return str(target)


def _writable(path: Path) -> bool:
    try:
        probe = path / ".write-probe"
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False
