"""No lost updates: every record has a version raised on each write; a save based on an older version
is refused — 412 with the current record in the API (If-Match / ETag), the form again with what the
other person changed and what this user typed on the screens."""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from conftest import Api, Browser, csrf_token

CHANGED_MEANWHILE = ("未保存：您打开此记录后，{who} 修改并保存了它（改动见下）。"
                     "您填写的内容仍在表单中；核对后再次保存，将以您填写的为准。")


def stored(app: Any, pk: int) -> dict[str, Any]:
    with app.app_context():
        row = app.appbuilder.session.execute(sa.text(
            "SELECT name, city, credit_limit, row_version FROM customer WHERE id = :id"), {"id": pk}).mappings().one()
        app.appbuilder.session.rollback()
        return dict(row)


def new_customer(api: Api, **values: Any) -> int:
    answer = api.post("/api/v1/customer/", json={"name": "远东化工", "city": "苏州", **values})
    assert answer.status_code == 201, answer.text
    return answer.json["id"]


def test_get_answers_the_version_and_a_put_on_an_old_one_is_412_with_the_record(app: Any, api: Api) -> None:
    pk = new_customer(api)
    first = api.get(f"/api/v1/customer/{pk}")
    assert first.headers["ETag"] == '"1"'

    saved = api.put(f"/api/v1/customer/{pk}", json={"city": "无锡"}, headers={"If-Match": '"1"'})
    assert saved.status_code == 200 and saved.headers["ETag"] == '"2"'

    late = api.put(f"/api/v1/customer/{pk}", json={"city": "常州"}, headers={"If-Match": '"1"'})
    assert late.status_code == 412
    assert late.json["message"] == "此记录已被他人修改（现为第 2 版），未保存；请按返回的当前内容核对后再试"
    assert late.json["result"]["city"] == "无锡" and late.headers["ETag"] == '"2"'
    assert stored(app, pk)["city"] == "无锡"

    english = api.put(f"/api/v1/customer/{pk}?_l_=en", json={"city": "常州"},
                      headers={"If-Match": '"1"', "Accept-Language": "en"})
    assert english.status_code == 412
    assert english.json["message"] == ("This record was changed by someone else (it is now version 2); nothing was "
                                       "saved. Check the current record returned here and try again.")

    refused_delete = api.delete(f"/api/v1/customer/{pk}", headers={"If-Match": '"1"'})
    assert refused_delete.status_code == 412 and stored(app, pk)["city"] == "无锡"
    for crafted in ('"abc"', 'W/"2"', '"1", "7"', '""'):  # not the current version, strongly: refused
        answer = api.put(f"/api/v1/customer/{pk}", json={"city": "镇江"}, headers={"If-Match": crafted})
        assert answer.status_code == 412, crafted
    assert stored(app, pk) == {"name": "远东化工", "city": "无锡", "credit_limit": None, "row_version": 2}

    star = api.put(f"/api/v1/customer/{pk}", json={"city": "南通"}, headers={"If-Match": "*"})
    assert star.status_code == 200 and star.headers["ETag"] == '"3"'
    deleted = api.delete(f"/api/v1/customer/{pk}", headers={"If-Match": '"3"'})
    assert deleted.status_code == 200


def test_two_people_putting_the_whole_record_lose_nothing(app: Any, api: Api) -> None:
    """The report's case: both read the record, each changes one field and sends the whole record back."""
    pk = new_customer(api, credit_limit="100000")
    finance = Api(app)
    for n in range(20):
        mine, theirs = api.get(f"/api/v1/customer/{pk}"), finance.get(f"/api/v1/customer/{pk}")
        keep = {k: mine.json["result"][k] for k in ("name", "city")}
        assert api.put(f"/api/v1/customer/{pk}", json={**keep, "city": f"城{n}"},
                       headers={"If-Match": mine.headers["ETag"]}).status_code == 200
        late = finance.put(f"/api/v1/customer/{pk}", json={"name": theirs.json["result"]["name"],
                                                           "city": theirs.json["result"]["city"]},
                           headers={"If-Match": theirs.headers["ETag"]})
        assert late.status_code == 412
        assert stored(app, pk)["city"] == f"城{n}"


def edit_page(browser: Browser, pk: int) -> tuple[str, str]:
    """Open the edit form; return (csrf token, version it carries)."""
    page = browser.get(f"/t/customer/edit/{pk}").text
    version = re.search(r'<input[^>]*name="row_version"[^>]*value="(\d+)"', page) or re.search(
        r'<input[^>]*value="(\d+)"[^>]*name="row_version"', page)
    assert version, "the edit form carries no version"
    return csrf_token(page), version.group(1)


def test_a_form_saved_over_someone_elses_change_is_refused_showing_both(app: Any, api: Api) -> None:
    pk = new_customer(api, credit_limit="5000")
    zhang, li = Browser(app), Browser(app)
    token, version = edit_page(zhang, pk)          # 张 opens the form ...
    li_token, li_version = edit_page(li, pk)       # ... and so does 李, who saves first
    saved = li.client.post(f"/t/customer/edit/{pk}", data={
        "csrf_token": li_token, "row_version": li_version, "name": "远东化工", "city": "上海", "credit_limit": "5000"})
    assert saved.status_code == 302

    late = zhang.client.post(f"/t/customer/edit/{pk}", data={
        "csrf_token": token, "row_version": version, "name": "远东化工", "city": "苏州", "credit_limit": "80000"})

    assert late.status_code == 200  # the form again, not a redirect that looks like success
    page = late.text
    assert CHANGED_MEANWHILE.format(who="管理员") in page
    conflict = page.split('class="panel panel-warning crm-conflict"')[1].split("</table>")[0]
    assert "城市" in conflict and "苏州 → 上海" in conflict  # what 李 changed
    assert 'value="80000"' in page and 'value="苏州"' in page  # what 张 typed, still there
    assert stored(app, pk) == {"name": "远东化工", "city": "上海", "credit_limit": 5000, "row_version": 2}

    # saving the form again, now based on the current version, is 张's informed choice
    again_token = csrf_token(page)
    now = re.search(r'<input[^>]*name="row_version"[^>]*value="(\d+)"', page).group(1)
    assert now == "2"
    kept = zhang.client.post(f"/t/customer/edit/{pk}", data={
        "csrf_token": again_token, "row_version": now, "name": "远东化工", "city": "苏州", "credit_limit": "80000"})
    assert kept.status_code == 302
    assert stored(app, pk) == {"name": "远东化工", "city": "苏州", "credit_limit": 80000, "row_version": 3}


def test_a_form_with_a_crafted_version_shows_what_is_stored_and_saves_nothing(app: Any, api: Api) -> None:
    pk = new_customer(api)
    browser = Browser(app)
    token, _ = edit_page(browser, pk)
    for crafted in ("0", "99", "abc", "-1"):
        answer = browser.client.post(f"/t/customer/edit/{pk}", data={
            "csrf_token": token, "row_version": crafted, "name": "被改化工", "city": "杭州"})
        assert answer.status_code == 200 and "未保存：您打开此记录后" in answer.text, crafted
    assert stored(app, pk) == {"name": "远东化工", "city": "苏州", "credit_limit": None, "row_version": 1}


def test_two_saves_at_the_same_moment_never_both_succeed(app: Any, api: Api) -> None:
    """Both read version 1; the version check in the UPDATE lets only one of them write."""
    pk = new_customer(api)
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        engine = app.extensions["crm"].db.engine
        from sqlalchemy import orm
        first, second = orm.Session(engine), orm.Session(engine)
        a, b = first.get(model, pk), second.get(model, pk)
        a.city, b.city = "甲城", "乙城"
        first.commit()
        try:
            second.commit()
            raise AssertionError("the second save of version 1 went through")
        except orm.exc.StaleDataError:
            second.rollback()
        first.close(), second.close()
    assert stored(app, pk)["city"] == "甲城"


def saved_by_someone_else_during_the_next_save(app: Any, pk: int) -> Any:
    """Make another connection save record `pk` at the moment the app's next save of it is flushed:
    after the app read the record, before its UPDATE. Return the listener (to remove)."""
    from sqlalchemy import event
    model = app.extensions["crm"].models.model("customer")
    engine = sa.create_engine(app.config["CRM_DATABASE_URL"])
    done: list[bool] = []

    def meanwhile(mapper: Any, connection: Any, target: Any) -> None:
        if done or target.id != pk:
            return
        done.append(True)
        with engine.begin() as other:
            other.execute(sa.text("UPDATE customer SET city = '他城', row_version = row_version + 1 WHERE id = :id"),
                          {"id": pk})
        engine.dispose()
    event.listen(model, "before_update", meanwhile)
    return lambda: event.remove(model, "before_update", meanwhile)


def test_a_save_that_meets_another_at_the_same_moment_is_refused_not_merged(app: Any, api: Api) -> None:
    pk = new_customer(api)
    remove = saved_by_someone_else_during_the_next_save(app, pk)
    try:
        answer = api.put(f"/api/v1/customer/{pk}", json={"city": "我城"}, headers={"If-Match": '"1"'})
    finally:
        remove()
    assert answer.status_code == 409
    assert answer.json["message"] == "此记录刚被他人修改，您的更改未保存；请重新打开记录，核对后再改"
    assert stored(app, pk)["city"] == "他城"

    browser = Browser(app)
    token, version = edit_page(browser, pk)
    remove = saved_by_someone_else_during_the_next_save(app, pk)
    try:
        page = browser.client.post(f"/t/customer/edit/{pk}", data={
            "csrf_token": token, "row_version": version, "name": "远东化工", "city": "我城"})
    finally:
        remove()
    assert page.status_code == 200 and "此记录刚被他人修改，您的更改未保存" in page.text
    assert 'value="我城"' in page.text  # what was typed is still in the form
    assert stored(app, pk)["city"] == "他城"


LEGACY = """
tables:
  gadget:
    title: name
    fields:
      name: {type: string}
      legacy: {type: string}
"""


def database_with_a_row_version_field(url: str) -> None:
    """Make the database a panel made before `row_version` was reserved: a string field of that name
    holding the user's data, and no version column."""
    from app.dbsync.lock import locked_connection
    from app.dbsync.state import load_state, save_state
    from app.dbsync.sync import sync_schema
    from app.schema import load_schema_text
    sync_schema(url, load_schema_text({"s.yaml": LEGACY}), None)
    with locked_connection(url) as conn:
        quote = conn.dialect.identifier_preparer.quote
        conn.execute(sa.text(f"ALTER TABLE {quote('gadget')} DROP COLUMN {quote('row_version')}"))
        conn.execute(sa.text(f"ALTER TABLE {quote('gadget')} "
                             f"RENAME COLUMN {quote('legacy')} TO {quote('row_version')}"))
        conn.execute(sa.text("INSERT INTO gadget (name, row_version) VALUES ('g', 'v2.1-beta')"))
        state = load_state(conn)
        state["gadget"].fields["row_version"] = {**state["gadget"].fields.pop("legacy"), "key": "row_version",
                                                 "column": "row_version"}
        save_state(conn, state)


def test_a_field_once_named_row_version_keeps_its_data_and_the_table_gets_a_version(db_url: str) -> None:
    from app.dbsync.sync import sync_schema
    from app.schema import load_schema_text
    database_with_a_row_version_field(db_url)
    renamed = LEGACY.replace("legacy: {type: string}", "model_version: {type: string, renamed_from: row_version}")

    result = sync_schema(db_url, load_schema_text({"s.yaml": renamed}), None)

    assert [s.words for s in result.applied] == [
        "~ rename column gadget.row_version → gadget.model_version (from renamed_from)",
        "+ add version numbers to gadget records (so that a save based on an outdated copy is refused)"]
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(sa.text("SELECT name, model_version, row_version FROM gadget"))] == [
            ("g", "v2.1-beta", 1)]
    engine.dispose()


def test_a_retired_field_once_named_row_version_is_moved_aside_not_taken_as_the_version(db_url: str) -> None:
    from app.dbsync.sync import sync_schema
    from app.schema import load_schema_text
    database_with_a_row_version_field(db_url)
    without = LEGACY.replace("      legacy: {type: string}\n", "")

    result = sync_schema(db_url, load_schema_text({"s.yaml": without}), None)

    assert [s.words for s in result.applied] == [
        "- retire column gadget.row_version (data kept, hidden)",
        "~ move retired column gadget.row_version to row_version_retired (the name row_version is now the system's)",
        "+ add version numbers to gadget records (so that a save based on an outdated copy is refused)"]
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, row_version_retired, row_version FROM gadget")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("g", "v2.1-beta", 1)]
    assert sync_schema(db_url, load_schema_text({"s.yaml": without}), None).applied == []


def test_a_malformed_if_match_is_refused_not_ignored(app: Any, api: Api) -> None:
    pk = new_customer(api)
    assert api.put(f"/api/v1/customer/{pk}", json={"city": "无锡"}).status_code == 200
    for crafted in ('"1', ",", "\x00\""):
        answer = api.put(f"/api/v1/customer/{pk}", json={"city": "镇江"}, headers={"If-Match": crafted})
        assert answer.status_code == 400, crafted
        assert answer.json["message"] == 'If-Match 的格式不对：应为 GET 返回的 ETag，例如 "3"（带双引号），或 *'
    assert stored(app, pk)["city"] == "无锡"
