"""Encrypted fields: ciphertext at rest bound to its place, keys, rotation, search and masking."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Api, Browser

SECRET_SCHEMA = """
tables:
  recipe:
    label: {zh: 配方, en: Recipe}
    title: name
    search: [name, code]
    fields:
      name: {type: string, label: {zh: 名称, en: Name}, required: true}
      code: {type: string, label: {zh: 内部编号, en: Internal code}, encrypted: true, searchable: true}
      formula: {type: text, label: {zh: 配方, en: Formula}, encrypted: true}
      cost: {type: money, label: {zh: 成本, en: Cost}, encrypted: true}
      phone: {type: phone, label: {zh: 电话, en: Phone}, encrypted: true}
      sheet: {type: attachment, label: {zh: 工艺单, en: Process sheet}, encrypted: true}
roles:
  clerk:
    tables:
      recipe: {can: [read, update]}
  chemist:
    tables:
      recipe: {can: [read, update, reveal]}
"""
PASSWORD = "role-pass-123"
PLAIN = "氯化钠PLAINTEXT-42"


@pytest.fixture
def secret_app(make_app: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "secret-schema"
    folder.mkdir()
    (folder / "s.yaml").write_text(SECRET_SCHEMA, encoding="utf-8")
    app = make_app(schema_dir=folder)
    from app.security.users import add_user
    with app.app_context():
        add_user(app.appbuilder, "clerk", "clerk", PASSWORD)
        add_user(app.appbuilder, "chemist", "chemist", PASSWORD)
    return app


def add_recipes(app: Any) -> list[int]:
    api = Api(app)
    ids = []
    for n, (code, phone) in enumerate((("R-001", "13812345678"), ("R-002", "021-55556666"))):
        created = api.post("/api/v1/recipe/", json={"name": f"配方{n}", "code": code, "formula": f"{PLAIN}-{n}",
                                                    "cost": f"1{n}.50", "phone": phone})
        assert created.status_code == 201, created.json
        ids.append(created.json["id"])
    return ids


def raw_rows(app: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        engine = app.extensions["crm"].db.engine
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM recipe ORDER BY id"))]


def test_values_are_stored_encrypted_and_read_back(secret_app: Any) -> None:
    api = Api(secret_app)
    created = api.post("/api/v1/recipe/", json={"name": "盐水", "code": "R-001", "formula": PLAIN, "cost": "12.50",
                                                "phone": "13812345678"})
    assert created.status_code == 201, created.json
    pk = created.json["id"]
    record = api.get(f"/api/v1/recipe/{pk}").json["result"]
    assert (record["code"], record["formula"], record["cost"], record["phone"]) == \
        ("R-001", PLAIN, "12.50", "13812345678")
    row = raw_rows(secret_app)[0]
    stored = " ".join(str(v) for v in row)
    assert PLAIN not in stored and "R-001" not in stored and "13812345678" not in stored and "12.50" not in stored
    assert "盐水" in stored
    assert api.put(f"/api/v1/recipe/{pk}", json={"formula": "新配方"}).status_code == 200
    assert api.get(f"/api/v1/recipe/{pk}").json["result"]["formula"] == "新配方"
    assert "新配方" not in " ".join(str(v) for v in raw_rows(secret_app)[0])
    page = Browser(secret_app).get(f"/t/recipe/show/{pk}").text
    assert "新配方" in page


def test_only_exact_match_search_works_and_nothing_sorts_by_ciphertext(secret_app: Any) -> None:
    import prison
    first, second = add_recipes(secret_app)
    api, browser = Api(secret_app), Browser(secret_app)

    def names(filters: list[dict[str, str]]) -> Any:
        answer = api.get(f"/api/v1/recipe/?q={prison.dumps({'filters': filters})}")
        return answer.json["message"] if answer.status_code == 400 else [r["name"] for r in answer.json["result"]]
    assert names([{"col": "code", "opr": "eq", "value": "R-002"}]) == ["配方1"]
    assert names([{"col": "code", "opr": "eq", "value": " r-002 "}]) == ["配方1"]  # trimmed, any case
    assert names([{"col": "code", "opr": "ct", "value": "R-00"}]) == "Filter operation: ct not allowed on column: code"
    assert names([{"col": "formula", "opr": "eq", "value": PLAIN}]) == "Filter column: formula not allowed to filter"
    order = api.get(f"/api/v1/recipe/?q={prison.dumps({'order_column': 'cost', 'order_direction': 'asc'})}")
    assert (order.status_code, order.json) == (400, {"message": "Invalid order by column: cost"})
    assert "配方1" in browser.get("/t/recipe/list/?q=R-002").text
    assert "配方1" not in browser.get("/t/recipe/list/?q=R-00").text  # no partial match on ciphertext
    assert "配方1" in browser.get("/t/recipe/list/?q=配方1").text
    panel = browser.get("/t/recipe/list/?_flt_0_code=R-001").text
    assert "配方0" in panel and "配方1" not in panel


def test_roles_without_reveal_see_masks_everywhere(secret_app: Any) -> None:
    import prison
    first, _ = add_recipes(secret_app)
    clerk, chemist = Api(secret_app, "clerk", PASSWORD), Api(secret_app, "chemist", PASSWORD)
    masked = clerk.get(f"/api/v1/recipe/{first}").json["result"]
    assert (masked["formula"], masked["cost"], masked["phone"], masked["code"]) == (
        "●●●●", "●●●●", "138****5678", "●●●●")
    every = prison.dumps({"columns": ["name", "code", "formula", "cost", "phone"]})
    answers = [clerk.get(f"/api/v1/recipe/?q={every}").text, clerk.get(f"/api/v1/recipe/{first}?q={every}").text,
               clerk.get("/api/v1/recipe/").text, clerk.get("/api/v1/recipe/_info").text]
    browser = Browser(secret_app, "clerk", PASSWORD)
    answers += [browser.get(url).text for url in ("/t/recipe/list/", f"/t/recipe/show/{first}",
                                                  f"/t/recipe/edit/{first}")]
    for text in answers:
        assert PLAIN not in text and "13812345678" not in text and "R-001" not in text and "10.50" not in text
    assert "138****5678" in answers[-2]
    refused = clerk.put(f"/api/v1/recipe/{first}", json={"formula": "改掉"})
    assert (refused.status_code, refused.json) == (422, {"message": {"formula": ["Unknown field."]}})
    guess = clerk.get("/api/v1/recipe/?q="
                      f"{prison.dumps({'filters': [{'col': 'code', 'opr': 'eq', 'value': 'R-001'}]})}")
    assert guess.status_code == 400  # no guessing a masked value through the search
    assert browser.get("/t/recipe/list/?_flt_0_code=R-001").status_code == 400
    shown = chemist.get(f"/api/v1/recipe/{first}").json["result"]
    assert (shown["formula"], shown["cost"], shown["code"]) == (f"{PLAIN}-0", "10.50", "R-001")
    assert chemist.put(f"/api/v1/recipe/{first}", json={"formula": "改过"}).status_code == 200


def test_a_moved_or_altered_ciphertext_is_detected(secret_app: Any) -> None:
    first, second = add_recipes(secret_app)
    with secret_app.app_context():
        engine = secret_app.extensions["crm"].db.engine
        with engine.begin() as conn:
            stolen = conn.execute(sa.text("SELECT formula FROM recipe WHERE id = :i"), {"i": first}).scalar()
            conn.execute(sa.text("UPDATE recipe SET formula = :f WHERE id = :i"), {"f": stolen, "i": second})
    api = Api(secret_app)
    moved = api.get(f"/api/v1/recipe/{second}")
    assert moved.status_code == 500
    assert moved.json["message"] == (f"加密数据无法解密：recipe.formula#{second}: the stored value does not "
                                     "decrypt — it was altered, or copied from another record or field。"
                                     "请管理员运行 crm keys check。")
    assert api.get(f"/api/v1/recipe/{first}").json["result"]["formula"] == f"{PLAIN}-0"
    with secret_app.app_context():
        with secret_app.extensions["crm"].db.engine.begin() as conn:
            altered = stolen[:-6] + ("A" if stolen[-6] != "A" else "B") + stolen[-5:]
            conn.execute(sa.text("UPDATE recipe SET formula = :f WHERE id = :i"), {"f": altered, "i": first})
    page = Browser(secret_app).get(f"/t/recipe/show/{first}")
    assert page.status_code == 500 and "无法解密" in page.text and PLAIN not in page.text


def test_keys_rotate_moves_every_value_to_the_new_key_and_check_proves_it(secret_app: Any, db_url: str,
                                                                           tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys
    add_recipes(secret_app)
    config = secret_app.config
    env = {**os.environ, "CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": config["CRM_SCHEMA_DIR"],
           "CRM_INSTANCE_DIR": config["CRM_INSTANCE_DIR"], "CRM_MIGRATIONS_DIR": config["CRM_MIGRATIONS_DIR"],
           "CRM_SECRET_KEY": "k" * 40}
    env.pop("CRM_ENCRYPTION_KEYS", None)

    def crm(*args: str, **extra: str) -> Any:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                              env={**env, **extra}, cwd=Path(__file__).parent.parent, timeout=120)
    old_key = secret_app.extensions["crm"].keyring.primary.id
    key_file = Path(config["CRM_INSTANCE_DIR"]) / "encryption.keys"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    before = crm("keys", "check")
    assert before.returncode == 0 and f"8 under key {old_key}" in before.stdout
    added = crm("keys", "new")
    new_key = re.search(r"Added key (\w+) first", added.stdout).group(1)
    rotated = crm("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "recipe.formula: 2 of 2 values checked" in rotated.stdout
    assert f"Re-encrypted 8 values under key {new_key}." in rotated.stdout
    # the audit log's sealed values stay under the old key: the chain is never rewritten
    assert (f"Keep key {old_key}: 8 values in the audit log are sealed with it (the log is never rewritten, so "
            "they cannot move to the new key).") in rotated.stdout
    assert "No value uses" not in rotated.stdout
    after = crm("keys", "check")
    assert after.stdout == (f"Encrypted values that decrypt: 8 under key {new_key}.\n"
                            f"Sealed values in the audit log that decrypt: 8 under key {old_key}.\n")
    assert crm("keys", "rotate").stdout.count("Re-encrypted 0 values") == 1  # nothing left to do
    text = " ".join(str(v) for row in raw_rows(secret_app) for v in row)
    assert f"enc1:{old_key}:" not in text and text.count(f"enc1:{new_key}:") == 8
    from app.crypto import load_keyring
    reopened = load_keyring(None, Path(config["CRM_INSTANCE_DIR"]), create=False)
    assert [k.id for k in reopened.keys] == [new_key, old_key]
    wrong = crm("keys", "check", CRM_ENCRYPTION_KEYS="A" * 43)
    assert wrong.returncode == 1
    assert re.fullmatch(r"Encryption keys: recipe\.code#1 is encrypted with key \w+, which is not among the keys "
                        r"in CRM_ENCRYPTION_KEYS; set CRM_ENCRYPTION_KEYS to the keys the data was encrypted with\n",
                        wrong.stderr), wrong.stderr
    malformed = crm("keys", "check", CRM_ENCRYPTION_KEYS="not-a-key")
    assert malformed.stderr == ("Encryption keys: CRM_ENCRYPTION_KEYS: one of the keys is not a key (expected 32 "
                                "bytes in URL-safe base64; make one with `crm keys new`)\n")


def test_an_encrypted_attachment_is_stored_encrypted_and_bound_to_its_name(secret_app: Any) -> None:
    import io
    import re
    first, second = add_recipes(secret_app)
    browser = Browser(secret_app)
    content = f"%PDF {PLAIN} 工艺".encode()
    for pk in (first, second):
        saved = browser.submit(f"/t/recipe/edit/{pk}",
                               {"name": f"配方{pk}", "sheet": (io.BytesIO(content), "工艺单.pdf")},
                               content_type="multipart/form-data")
        assert saved.status_code == 302, saved.text
    uploads = Path(secret_app.config["UPLOAD_FOLDER"])
    stored = sorted(uploads.iterdir())
    assert len(stored) == 2 and all(PLAIN.encode() not in f.read_bytes() for f in stored)
    link = re.search(r'href="(/t/recipe/file/sheet/[^"]+)"', browser.get(f"/t/recipe/show/{first}").text).group(1)
    answer = browser.get(link)
    assert answer.status_code == 200 and answer.data == content
    answer.close()
    reveals = [e for e in raw_audit(secret_app) if e["action"] == "reveal" and '"sheet"' in (e["changes"] or "")]
    assert reveals and reveals[-1]["username"] == "admin"
    clerk = Browser(secret_app, "clerk", PASSWORD)
    assert clerk.get(link).status_code == 403
    assert "●●●●" in clerk.get(f"/t/recipe/show/{first}").text
    # another record's encrypted file put in its place does not open, nor does a plain file
    from urllib.parse import unquote
    mine = uploads / unquote(link.rsplit("/", 1)[1])
    other = next(f for f in stored if f != mine)
    mine.write_bytes(other.read_bytes())
    moved = browser.get(link)
    assert moved.status_code == 500 and "the file does not decrypt" in moved.text
    mine.write_bytes(b"%PDF plain")
    assert "the file is not encrypted" in browser.get(link).text


def test_rotation_encrypts_files_stored_before_the_field_was_encrypted(secret_app: Any, db_url: str) -> None:
    import os
    import subprocess
    import sys
    first, _ = add_recipes(secret_app)
    uploads = Path(secret_app.config["UPLOAD_FOLDER"])
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "old__旧工艺单.pdf").write_bytes(b"%PDF old plain sheet")
    with secret_app.app_context(), secret_app.extensions["crm"].db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE recipe SET sheet = 'old__旧工艺单.pdf' WHERE id = :i"), {"i": first})
    config = secret_app.config
    env = {**os.environ, "CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": config["CRM_SCHEMA_DIR"],
           "CRM_INSTANCE_DIR": config["CRM_INSTANCE_DIR"], "CRM_MIGRATIONS_DIR": config["CRM_MIGRATIONS_DIR"],
           "CRM_SECRET_KEY": "k" * 40}
    env.pop("CRM_ENCRYPTION_KEYS", None)

    def crm(*args: str) -> Any:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                              cwd=Path(__file__).parent.parent, timeout=120)
    before = crm("keys", "check")
    assert before.returncode == 1
    assert (f"recipe.sheet#{first} (old__旧工艺单.pdf): file:old__旧工艺单.pdf: the file is not encrypted"
            in before.stderr)
    rotated = crm("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert b"old plain sheet" not in (uploads / "old__旧工艺单.pdf").read_bytes()
    assert crm("keys", "check").returncode == 0
    answer = Browser(secret_app).get("/t/recipe/file/sheet/old__旧工艺单.pdf")
    assert answer.data == b"%PDF old plain sheet"
    answer.close()


def raw_audit(app: Any) -> list[dict[str, Any]]:
    from app.audit.log import AUDIT_TABLE
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(AUDIT_TABLE).order_by(AUDIT_TABLE.c.id))]


def raw_database_bytes(url: str) -> bytes:
    """Return the database as bytes: SQLite's files, or a pg_dump / mariadb-dump of a server database."""
    import subprocess
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"),
                                                 path.with_name(path.name + "-journal")) if p.exists())
    if parsed.get_backend_name() == "postgresql":
        command = ["pg_dump", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U",
                   parsed.username or "postgres", parsed.database or ""]
    else:
        command = ["mariadb-dump", "-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306), "-u",
                   parsed.username or "root", parsed.database or ""]
    return subprocess.run(command, capture_output=True, check=True, timeout=120).stdout


def test_no_plaintext_in_the_database_file_or_dump(secret_app: Any) -> None:
    first, _ = add_recipes(secret_app)
    Api(secret_app).put(f"/api/v1/recipe/{first}", json={"formula": f"{PLAIN}-changed", "phone": "13900001111"})
    with secret_app.app_context():
        secret_app.extensions["crm"].db.engine.dispose()  # SQLite: everything written to its file
    raw = raw_database_bytes(secret_app.config["CRM_DATABASE_URL"])
    assert "配方0".encode() in raw  # plain fields are there to be found
    for secret in (PLAIN, "R-001", "13812345678", "13900001111", "10.50"):
        assert secret.encode() not in raw, secret


def test_processes_starting_together_share_one_new_key_and_a_loose_key_file_is_refused(tmp_path: Path) -> None:
    import os
    import threading

    from app.crypto import KeyProblem, load_keyring
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(load_keyring(None, tmp_path, create=True).primary.id))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1  # the first file to appear wins
    assert [p.name for p in tmp_path.iterdir()] == ["encryption.keys"]
    os.chmod(tmp_path / "encryption.keys", 0o644)
    with pytest.raises(KeyProblem) as refused:
        load_keyring(None, tmp_path, create=True)
    assert str(refused.value) == (f"{tmp_path / 'encryption.keys'} can be read or changed by other users (mode 644); "
                                  f"run: chmod 600 {tmp_path / 'encryption.keys'}")
