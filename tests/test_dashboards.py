"""Role dashboards (reports/ `dashboards:`): each role's home page shows its widgets computed over the
rows it reads, a widget opens the list of exactly the rows it counts, and in Chromium the charts draw
with every request outside the panel blocked."""
from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from app.reports.load import load_reports_text
from app.schema import SchemaError, load_schema
from app.seed import DEMO_PASSWORD, load_demo_data
from conftest import DEFAULT_SCHEMA, Browser
from test_journeys import ARTIFACTS, VIEWPORTS, serve

WIDGETS = {"zhangwei": ["my_open_orders", "my_follow_ups_due", "my_customers_feedback"],
           "chenjing": ["receivables_ageing", "overdue_receivables", "invoices_this_month"],
           "zhaomin": ["sales_by_month", "sales_by_salesperson", "satisfaction_trend"],
           "liuyang": ["open_feedback", "complaints_this_month"]}


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.1)
    add_recent_business(app)
    return app


def add_recent_business(app: Any) -> None:
    """Today's work (the demo data ends in 2025): orders with lines and feedback of this month."""
    state = app.extensions["crm"]
    models, session = state.models, state.db.session
    today = datetime.date.today()
    with app.app_context():
        sm = app.appbuilder.sm
        seller = sm.find_user(username="zhangwei")
        customer = session.execute(sa.select(models.model("customer")).where(
            models.model("customer").owner_id == seller.id)).scalars().first()
        product = session.execute(sa.select(models.model("product"))).scalars().first()
        for n in range(3):
            order = models.model("order")(number=f"SO-TODAY-{n}", customer=customer, order_date=today,
                                          status="confirmed", currency="CNY", salesperson=seller)
            session.add(order)
            session.add(models.model("order_line")(order=order, product=product, quantity=Decimal(10 + n),
                                                   unit_price=Decimal("12.50"), unit="kg"))
            session.add(models.model("feedback")(customer=customer, feedback_date=today, type="complaint",
                                                 satisfaction=2 + n, subject=f"今天的反馈 {n}", content="包装破损",
                                                 status="new"))
        session.commit()


def order_table(app: Any) -> str:
    """Return the order table's name quoted for raw SQL (order is a reserved word)."""
    with app.app_context():
        return "`order`" if app.extensions["crm"].db.engine.dialect.name == "mysql" else '"order"'


def record_count(html: str) -> int:
    found = re.search(r"记录数\D*(\d+)", html)
    return int(found.group(1)) if found else 0


def scalar(app: Any, query: str, **params: Any) -> Any:
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def test_each_roles_home_page_shows_its_widgets(demo: Any) -> None:
    for username, keys in WIDGETS.items():
        page = Browser(demo, username, DEMO_PASSWORD).get("/")
        assert page.status_code == 200
        assert re.findall(r'data-widget="(\w+)"', page.text) == keys, username
    admin = Browser(demo).get("/").text
    assert "User's Statistics" not in admin and "userstatschart" not in admin  # FAB's chart loads Google's code
    chemist = Browser(demo, "sunli", DEMO_PASSWORD).get("/")
    assert "data-widget" not in chemist.text and "crm-card-count" in chemist.text  # no dashboard: the counts


def test_a_widget_counts_the_users_rows_and_opens_exactly_them(demo: Any) -> None:
    seller = Browser(demo, "zhangwei", DEMO_PASSWORD)
    home = seller.get("/").text
    seller_id = scalar(demo, "SELECT id FROM ab_user WHERE username = 'zhangwei'")
    table = order_table(demo)
    confirmed = scalar(demo, f"SELECT COUNT(*) FROM {table} WHERE status = 'confirmed' AND salesperson_id = :u",
                       u=seller_id)
    link = re.search(r'href="(/t/order/list/\?crm_widget=sales\.my_open_orders&amp;crm_group=%22confirmed%22)"', home)
    assert link, home[:2000]
    listed = seller.get(link.group(1).replace("&amp;", "&"))
    assert "来自首页：我的在途订单（按状态）" in listed.text
    assert record_count(listed.text) == confirmed
    everything = seller.get("/t/order/list/?crm_widget=sales.my_open_orders")
    open_orders = scalar(demo, f"SELECT COUNT(*) FROM {table} WHERE status IN ('confirmed', 'in_production', "
                               "'shipped') AND salesperson_id = :u", u=seller_id)
    assert record_count(everything.text) == open_orders
    # a widget of another role's dashboard, or one that does not exist, opens no rows
    assert record_count(seller.get("/t/payment/list/?crm_widget=finance.overdue_receivables").text) == 0
    assert record_count(seller.get("/t/order/list/?crm_widget=sales.my_open_orders&crm_group=%7B%7D").text) == 0
    assert seller.get("/t/order/list/?crm_widget=sales.my_open_orders&crm_group=nope").status_code == 200
    for crafted in ("99999999999999999999", "%22%5Cud800%22", "1e400", "%5B1%5D"):
        page = seller.get(f"/t/order/list/?crm_widget=sales.my_open_orders&crm_group={crafted}")
        assert page.status_code == 200 and record_count(page.text) == 0, crafted
    wrong_table = seller.get("/t/payment/list/?crm_widget=sales.my_open_orders").text
    assert "来自首页" not in wrong_table and record_count(wrong_table) == 0
    # a record opened from the widget's list is the record, whatever the list was narrowed to
    some_order = scalar(demo, f"SELECT MIN(id) FROM {table} WHERE status = 'completed' AND salesperson_id = :u",
                        u=seller_id)
    shown = seller.get(f"/t/order/show/{some_order}?crm_widget=sales.my_open_orders&crm_group=%22confirmed%22")
    assert shown.status_code == 200
    # searching inside a widget's list keeps the widget
    assert '<input type="hidden" name="crm_widget" value="sales.my_open_orders">' in listed.text

    finance = Browser(demo, "chenjing", DEMO_PASSWORD).get("/").text
    overdue = scalar(demo, "SELECT SUM(outstanding) FROM payment WHERE status != 'paid' AND due_date < :d",
                     d=datetime.date.today())
    number = re.search(r'data-widget="overdue_receivables".*?crm-widget-value[^>]*>([^<]+)<', finance, re.S)
    assert number and number.group(1).strip() == f"{Decimal(str(overdue)).quantize(Decimal('0.01')):,}"


def test_dashboard_mistakes_are_named() -> None:
    text = """dashboards:
  sales:
    - key: x
      show: gauge
      table: order
    - key: y
      show: number
      table: order
      mine: customer
      measures: [{count: true}]
  nobody:
    - {key: z, show: number, table: order, measures: [{count: true}]}
"""
    with pytest.raises(SchemaError) as found:
        load_reports_text({"d.yaml": text}, load_schema(DEFAULT_SCHEMA))
    lines = str(found.value).splitlines()
    assert "d.yaml:4: dashboards.sales[0].show: unknown show 'gauge'" in lines
    assert "d.yaml:9: dashboards.sales[1].mine: 'customer' does not lead to a user field" in lines
    assert "d.yaml:11: dashboards.nobody: unknown role 'nobody'" in lines


def data_marks(svg: str) -> int:
    """Return how many shapes of an SVG chart are drawn in a colour (bars, wedges, lines, markers and
    the legend's swatches; axes, ticks and texts are black or grey): a chart without data has only
    its legend's one swatch."""
    colours = re.findall(r"(?:fill|stroke): rgb\((\d+)%,(\d+)%,(\d+)%\)", svg)
    return sum(1 for rgb in colours if len(set(rgb)) > 1)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("username", list(WIDGETS))
def test_dashboards_draw_their_charts_offline_in_chromium(chromium: Any, demo: Any, username: str) -> None:
    """Every request outside the panel is blocked: the charts still draw, nothing tried to load."""
    server, site = serve(demo)
    blocked: list[str] = []
    context = chromium.new_context(locale="zh-CN", base_url=site, viewport=VIEWPORTS["desktop"])

    def only_the_panel(route: Any) -> None:
        if route.request.url.startswith(site):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()
    context.route("**/*", only_the_panel)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"{site}/")
        charts = page.locator(".crm-widget-chart svg")
        assert charts.count() >= 1, page.inner_text("body")[:1000]
        for n in range(charts.count()):
            assert data_marks(charts.nth(n).evaluate("svg => svg.outerHTML")) >= 2, f"chart {n} of {username}"
            assert charts.nth(n).bounding_box()["width"] > 300  # as wide as its panel, not a thumbnail
        assert page.locator(".crm-widget").count() == len(WIDGETS[username])
        folder = ARTIFACTS / "sqlite" / "desktop"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{username}-dashboard.png"), full_page=True)
    finally:
        context.close()
        server.shutdown()
    assert blocked == []
