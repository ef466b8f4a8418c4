"""Settings: the root config.py, CRM_* environment variables over it, `crm config` saying where each
came from, and clear refusals for a setting that cannot be used."""
from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.settings import SettingError, load_config, settings_in_force

# A 1×1 transparent PNG: the smallest logo there is.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAA"
                       "AABJRU5ErkJggg==")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site_config.py"
    path.write_text(text, encoding="utf-8")
    return path


def sources(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> dict[str, tuple[Any, str]]:
    if path is not None:
        monkeypatch.setenv("CRM_CONFIG", str(path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {s.name: (s.value, s.source) for s in settings_in_force()}


def test_a_config_file_sets_values_and_the_environment_overrides_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_TIMEZONE", raising=False)
    path = write_config(tmp_path, 'import os\nCRM_TIMEZONE = "Asia/Hong_Kong"\nCRM_MAX_PAGE_SIZE = 40\n'
                                  'CRM_COMPANY_NAME = "华东精细化工"\nAPP_NAME = "华东客户管理"\n')
    found = sources(monkeypatch, path, CRM_MAX_PAGE_SIZE="25")
    assert found["CRM_TIMEZONE"] == ("Asia/Hong_Kong", "site_config.py")
    assert found["CRM_MAX_PAGE_SIZE"] == ("25", "environment")
    assert found["CRM_PASSWORD_MIN_LENGTH"] == (10, "default")
    assert found["APP_NAME"] == ("华东客户管理", "site_config.py")
    config = load_config()
    assert (config["CRM_TIMEZONE"], config["CRM_MAX_PAGE_SIZE"], config["FAB_API_MAX_PAGE_SIZE"]) == (
        "Asia/Hong_Kong", 25, 25)
    assert (config["CRM_COMPANY_NAME"], config["APP_NAME"]) == ("华东精细化工", "华东客户管理")


def test_crm_config_prints_each_setting_with_its_source_and_masks_secrets(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, 'CRM_TIMEZONE = "Asia/Hong_Kong"\n')
    monkeypatch.setenv("CRM_CONFIG", str(path))
    monkeypatch.setenv("CRM_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql+psycopg2://crm:hunter2-secret@db.example.com/crm")
    monkeypatch.setenv("CRM_SCHEMA_DIR", str(tmp_path / "my-schema"))
    shown = CliRunner().invoke(main, ["config"])
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[0]: line for line in shown.output.splitlines()[1:]}
    assert shown.output.splitlines()[0] == f"Settings read from {path}"
    assert lines["CRM_TIMEZONE"].split()[1:] == ["Asia/Hong_Kong", "[site_config.py]"]
    assert lines["CRM_SECRET_KEY"].split()[1:] == ["********", "[environment]"]
    assert lines["CRM_DATABASE_URL"].split()[1:] == ["postgresql+psycopg2://crm:***@db.example.com/crm",
                                                     "[environment]"]
    assert "hunter2" not in shown.output and "s" * 40 not in shown.output
    # folders derived from others are shown as they will be used
    assert lines["CRM_MIGRATIONS_DIR"].split()[1:] == [str(tmp_path / "migrations"), "[default]"]
    assert lines["CRM_REPORTS_DIR"].split()[1:] == [str(tmp_path / "reports"), "[default]"]


@pytest.mark.parametrize(("text", "message"), [
    ('CRM_TIMEZON = "Asia/Shanghai"\n', "CRM_TIMEZON is not a setting; did you mean CRM_TIMEZONE?"),
    ('CRM_MAX_PAGE_SIZE = "many"\n', "CRM_MAX_PAGE_SIZE must be a whole number, got 'many'"),
    ('CRM_SCHEMA_AUTO_APPLY = "maybe"\n', "CRM_SCHEMA_AUTO_APPLY must be yes or no (1/0, true/false), got 'maybe'"),
    ('CRM_TIMEZONE = "Mars/Olympus"\n', "CRM_TIMEZONE='Mars/Olympus' is not a time zone; use a name such as "
                                        "Asia/Shanghai"),
    ("CRM_TIMEZONE = (\n", "SyntaxError"),
])
def test_a_setting_that_cannot_be_used_stops_every_command_with_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    monkeypatch.setenv("CRM_CONFIG", str(write_config(tmp_path, text)))
    with pytest.raises(SettingError) as refused:
        load_config()
    assert message in str(refused.value)
    done = CliRunner().invoke(main, ["schema", "check"])
    assert done.exit_code == 1
    assert done.output.startswith("The panel did not start: ") and message in done.output


def test_a_config_file_that_is_not_there_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_CONFIG", str(tmp_path / "nope.py"))
    with pytest.raises(SettingError) as refused:
        load_config()
    assert str(refused.value).startswith(f"CRM_CONFIG='{tmp_path / 'nope.py'}': no such file; name a file such as ")


def test_a_logo_must_be_an_image_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "logo.txt").write_text("not an image")
    monkeypatch.setenv("CRM_COMPANY_LOGO", str(tmp_path / "logo.txt"))
    with pytest.raises(SettingError, match="is neither a PNG nor a JPEG image"):
        load_config()
    monkeypatch.setenv("CRM_COMPANY_LOGO", str(tmp_path / "missing.png"))
    with pytest.raises(SettingError) as refused:
        load_config()
    assert str(refused.value) == f"CRM_COMPANY_LOGO='{tmp_path / 'missing.png'}': no such file"


def test_the_company_name_and_logo_head_each_page_of_the_review_pdf(tmp_path: Path) -> None:
    from app.reports.permission_review import render_review_pdf
    from app.schema import load_schema
    from app.security.review import build_review
    from conftest import DEFAULT_SCHEMA
    from test_permissions import pdf_text
    (tmp_path / "logo.png").write_bytes(PNG)
    review = build_review(load_schema(DEFAULT_SCHEMA), [])
    body = render_review_pdf(review, [], datetime.datetime(2026, 12, 3, 10, 0), company="华东精细化工有限公司",
                             logo=str(tmp_path / "logo.png"))
    words = pdf_text(body)
    assert words.count("华东精细化工有限公司") == words.count("第 ") >= 1  # on every page
    assert b"/Subtype /Image" in body
    plain = pdf_text(render_review_pdf(review, [], datetime.datetime(2026, 12, 3, 10, 0)))
    assert "华东精细化工有限公司" not in plain
