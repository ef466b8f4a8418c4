"""Flask-AppBuilder's own texts follow the chosen language: Chinese by default, English after /lang/en.

Our catalog (app/translations/zh) fills what FAB's zh catalog misses, and the overrides in
app/templates/appbuilder/ make FAB's hard-coded modal buttons translatable.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Browser, csrf_token

# FAB's user search form builds a wtforms DateTimeField, which warns from inside wtforms.
pytestmark = pytest.mark.filterwarnings("ignore:'DateTimeField' renders:DeprecationWarning")

# English UI texts of FAB that must not show on a Chinese page, as they appear in the HTML once the
# whitespace next to tags is removed (">Save<" matches "<button ...>Save <i ...>").
ENGLISH_UI = (
    ">Cancel<", ">OK<", "Are you sure", "User confirmation needed", "Record Count", "Add Filter",
    ">Search<", ">Save<", ">Back<", 'title="Back"', ">Add<", ">Edit<", ">Show<", ">Delete<", ">Detail<",
    "Add a new record", "Edit record", "Show record", "Delete record", "No records found",
    "Page size", ">Actions<",
    ">List Users<", ">List Roles<", ">List Groups<", ">User's Statistics<", ">Security<", ">Profile<", ">Logout<",
    "Starts with", "Ends with", "Equal to", '"Contains"', "Greater than", "Smaller than", '"In"', "Not In",
    '"Relation"', "Added Row",
    "Sign In", "Enter your login and password below", ">Username", ">Password", ">Login<",
    "Show User", "Add User", "First Name", "Last Name", "Is Active?", ">Groups<", ">User<",
    # raw Python values that FAB's stock screens print
    ">True<", ">False<", ">None<", ">[]<", "[admin", "can read on table:customer,",
)


def flat(html: str) -> str:
    """Return the page with &nbsp; as a space and the whitespace next to tags removed."""
    html = html.replace("&nbsp;", " ")
    return re.sub(r"\s+<", "<", re.sub(r">\s+", ">", html))


def english_in(html: str, allowed: Collection[str] = ()) -> list[str]:
    """Return the texts of ENGLISH_UI found in the page, except `allowed`."""
    page = flat(html)
    return [word for word in ENGLISH_UI if word in page and word not in allowed]


def customer_id(app: Any) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        return app.appbuilder.session.execute(sa.select(model.id).order_by(model.id.desc())).scalars().first()


def add_customer(app: Any, browser: Browser) -> int:
    response = browser.submit("/t/customer/add", {"name": "测试公司", "status": "active", "grade": "A"})
    assert response.status_code == 302, response.text
    return customer_id(app)


def admin_id(app: Any) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_user(username="admin").id


def admin_role_id(app: Any) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_role("admin").id


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


# Each screen, with Chinese texts that prove FAB's parts of it were rendered in Chinese.
SCREENS = {
    "/t/customer/list/": ("记录数", "添加筛选条件", "确定要删除这条记录吗？", ">取消<", ">确定<", "新增记录",
                          "查看详情", "编辑记录", "删除记录", ">返回<", "用户组列表"),
    "/t/customer/show/{pk}": (">详情<", ">返回<", ">取消<"),
    "/t/customer/add": (">保存<", ">返回<", ">取消<"),
    "/users/list/": ("用户列表", ">用户组<", "是否启用", "用户名", ">是<", ">admin<"),
    "/roles/list/": ("角色列表", "复制角色", ">操作<", ">用户组<", "项权限"),
    "/roles/show/{role}": ("角色详情", "客户：查看、新增、修改、删除"),
    "/groups/list/": ("用户组列表", ">显示名<"),
    "/t/contact/list/": ("没有找到记录",),
    "/users/show/{admin}": ("用户详情", "个人信息", "是否启用", ">是<", ">—<"),
    "/users/add": ("新增用户", ">用户组<", ">保存<", "不建议删除用户"),
    "/users/userinfo/": (">用户信息<", "个人信息", "重设密码", "编辑用户", ">返回<"),
    "/resetmypassword/form": ("修改密码", "当前密码", "新密码", "确认新密码", ">保存<"),
}


@pytest.mark.parametrize("url", list(SCREENS))
def test_screens_show_no_english_ui_text_in_chinese(app: Any, browser: Browser, url: str) -> None:
    pk = add_customer(app, browser)
    html = page(browser, url.format(pk=pk, admin=admin_id(app), role=admin_role_id(app)))
    leaked = english_in(html)
    assert not leaked, leaked
    missing = [text for text in SCREENS[url] if text not in flat(html)]
    assert not missing, missing


def test_flash_after_add_edit_delete_is_chinese(app: Any, browser: Browser) -> None:
    added = browser.submit("/t/customer/add", {"name": "测试公司", "status": "active", "grade": "A"},
                           follow_redirects=True)
    assert "保存成功" in added.text and "Added Row" not in added.text
    pk = customer_id(app)
    edited = browser.submit(f"/t/customer/edit/{pk}", {"name": "测试公司二", "status": "active", "grade": "B"},
                            follow_redirects=True)
    assert "保存成功" in edited.text and "Changed Row" not in edited.text
    token = csrf_token(page(browser, "/t/customer/list/"))
    deleted = browser.client.post(f"/t/customer/delete/{pk}", data={"csrf_token": token}, follow_redirects=True)
    assert "记录已删除" in deleted.text and "Deleted Row" not in deleted.text


def test_pagination_is_chinese(app: Any, browser: Browser) -> None:
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        session = app.appbuilder.session
        session.add_all([model(name=f"测试公司{i:02d}", status="active", grade="A") for i in range(30)])
        session.commit()
    html = flat(page(browser, "/t/customer/list/"))
    assert ">每页条数<" in html and 'class="pagination' in html
    leaked = english_in(html)
    assert not leaked, leaked


def test_filter_operators_are_chinese(app: Any, browser: Browser) -> None:
    html = page(browser, "/t/customer/list/")
    # The operator names reach the page as JSON with non-ASCII escaped.
    for chinese in ("等于", "不等于", "包含", "不包含", "大于"):
        escaped = chinese.encode("ascii", "backslashreplace").decode()
        assert escaped in html, chinese
    leaked = [op for op in ("Starts with", "Ends with", "Contains", "Equal to", "Greater than", "Not In")
              if op in html]
    assert not leaked, leaked


def test_login_page_is_chinese(app: Any) -> None:
    html = page(app.test_client(), "/login/")
    leaked = english_in(html)
    assert not leaked, leaked
    missing = [text for text in ("请在下面输入您的用户名和密码", ">用户名", ">密码", 'value="登录"')
               if text not in flat(html)]
    assert not missing, missing


ENGLISH_SCREENS = {
    "/t/customer/list/": ("Record Count", "Add Filter", ">Search<", "Are you sure you want to delete this item?",
                          ">Cancel<", ">OK<", 'title="Back"', "Add a new record", "List Groups"),
    "/t/customer/show/{pk}": (">Detail<", ">Back<", ">Cancel<"),
    "/t/customer/add": (">Save<", ">Back<"),
    "/t/contact/list/": ("No records found",),
    "/users/list/": ("List Users", ">Groups<", "Is Active?"),
    "/roles/list/": ("List Roles", "Copy Role", ">Actions<"),
    "/users/userinfo/": ("Your user information", "Personal Info", "Reset my password", ">Back<"),
}
CHINESE_UI = ("没有找到记录", "记录数", "添加筛选条件", ">搜索<", "确定要删除", ">取消<", ">确定<", ">返回<", ">保存<",
              ">详情<", "用户列表", "角色列表", "用户组列表", "退出登录", "新增记录")


@pytest.mark.parametrize("url", list(ENGLISH_SCREENS))
def test_screens_switch_to_english(app: Any, browser: Browser, url: str) -> None:
    pk = add_customer(app, browser)
    assert browser.get("/lang/en").status_code == 302
    html = flat(page(browser, url.format(pk=pk)))
    missing = [text for text in ENGLISH_SCREENS[url] if text not in html]
    assert not missing, missing
    leaked = [text for text in CHINESE_UI if text in html]
    assert not leaked, leaked


def test_login_page_switches_to_english(app: Any) -> None:
    client = app.test_client()
    client.get("/lang/en")
    html = flat(page(client, "/login/"))
    missing = [text for text in ("Enter your login and password below", ">Username", 'value="Sign In"')
               if text not in html]
    assert not missing, missing
