"""查重: a customer added, or renamed, like one already stored is shown with a link to it, to confirm
or open instead — on the screens and the API; only the records the user may read are linked."""
from __future__ import annotations

from typing import Any

import pytest

from app.schema import SchemaError, load_schema_text
from app.seed import DEMO_PASSWORD, demo_user_ids
from conftest import Api, Browser
from test_record_rules import audit_rules, orm_add

WARNING = "可能与已有的客户重复：华信化工有限公司；请打开核对，确认不是同一家再保存"


@pytest.fixture
def firms(app: Any) -> Any:
    with app.app_context():
        demo_user_ids(app)
        zhang = app.appbuilder.sm.find_user(username="zhangwei").id
    app.ids = {"huaxin": orm_add(app, "customer", name="华信化工有限公司", owner_id=zhang),
               "other": orm_add(app, "customer", name="东方涂料有限公司", owner_id=zhang)}
    return app


def customer_names(app: Any) -> list[str]:
    return sorted(r["name"] for r in Api(app).get("/api/v1/customer/?q=(page_size:100)").json["result"])


def test_a_likely_duplicate_is_shown_with_a_link_and_saved_once_confirmed(firms: Any) -> None:
    zhang = Browser(firms, "zhangwei", DEMO_PASSWORD)
    form = {"name": "华信化工股份有限公司", "grade": "C", "status": "prospect"}
    warned = zhang.submit("/t/customer/add", form)
    assert warned.status_code == 200 and WARNING in warned.text
    assert f'href="/t/customer/show/{firms.ids["huaxin"]}"' in warned.text and "打开 华信化工有限公司" in warned.text
    assert 'name="crm_confirm" value="customer.duplicate"' in warned.text
    assert customer_names(firms) == ["东方涂料有限公司", "华信化工有限公司"]
    saved = zhang.submit("/t/customer/add", {**form, "crm_confirm": "customer.duplicate"})
    assert saved.status_code == 302
    assert customer_names(firms) == ["东方涂料有限公司", "华信化工有限公司", "华信化工股份有限公司"]
    new_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    assert audit_rules(firms) == [("zhangwei", "customer", new_id, "customer.duplicate")]


def test_someone_elses_customer_is_named_but_not_linked(firms: Any) -> None:
    lina = Browser(firms, "lina", DEMO_PASSWORD)
    warned = lina.submit("/t/customer/add", {"name": "华信化工（中国）有限公司", "grade": "C", "status": "prospect"})
    assert warned.status_code == 200 and WARNING in warned.text
    assert "/t/customer/show/" not in warned.text.split("crm-confirm-rules", 1)[1].split("</form>", 1)[0]
    answer = Api(firms, "lina", DEMO_PASSWORD).post("/api/v1/customer/", json={"name": "华信化工"})
    assert (answer.status_code, answer.json) == (409, {"message": WARNING, "confirm": ["customer.duplicate"],
                                                       "records": []})


def test_renaming_is_checked_and_other_edits_are_not(firms: Any) -> None:
    api = Api(firms)
    orm_add(firms, "customer", name="华信化工股份有限公司")  # an old duplicate, stored before 查重
    assert api.put(f"/api/v1/customer/{firms.ids['huaxin']}", json={"short_name": "华信"}).status_code == 200
    renamed = api.put(f"/api/v1/customer/{firms.ids['other']}", json={"name": "华信化工集团有限公司"})
    assert renamed.status_code == 409 and renamed.json["records"] == [
        {"table": "customer", "id": firms.ids["huaxin"], "title": "华信化工有限公司"},
        {"table": "customer", "id": firms.ids["other"] + 1, "title": "华信化工股份有限公司"}]
    confirmed = api.put(f"/api/v1/customer/{firms.ids['other']}", json={"name": "华信化工集团有限公司"},
                        headers={"X-Confirm-Rules": "customer.duplicate"})
    assert confirmed.status_code == 200
    assert api.post("/api/v1/customer/", json={"name": "华"}).status_code == 201  # too short to compare


def test_duplicates_mistakes_are_named() -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"schema/t.yaml": "tables:\n  firm:\n    fields:\n      name: string\n"
                                           "      limit: money\n    duplicates: [nmae, limit]\n"})
    assert [f"{i.path}: {i.message} | {i.hint}" for i in caught.value.issues] == [
        "tables.firm.duplicates: 'nmae' is not a field of firm | did you mean 'name'? known fields: name, limit",
        "tables.firm.duplicates: firm.limit is a money field; duplicates are found by names and codes | list fields "
        "of type string, uscc, phone, email, cas_number that are not encrypted"]
