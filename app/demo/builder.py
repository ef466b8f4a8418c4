"""Deterministic Chinese demo data for the default schema of a chemical-products company.

`build_demo_rows` returns plain Python rows per table (parents before children). Link fields hold
the 0-based index of the target row in the target table's list; the inserter maps them to ids.
Only `random.Random(seed)` is used and every date lies in 2024-2025, so each run gives the same rows.
The names, places, chemicals and texts come from the YAML files of a data folder (see reference.py);
this module holds only the rules that combine them. Each table (or pair of tables made together)
has its own small maker class; they share one `DemoState`.
"""
from __future__ import annotations

import datetime
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.demo.helpers import (
    CENT,
    day_between,
    landline,
    mobile,
    money,
    person_name,
    pick,
    pick_some,
    plus_days,
    scaled,
    state,
    uscc,
)
from app.demo.reference import Chemical, DemoData, Province, load_reference_data
from app.schema.model import SchemaSpec

Row = dict[str, Any]

DEMO_START = datetime.date(2024, 1, 1)
DEMO_END = datetime.date(2025, 12, 31)   # the demo's "today": statuses are judged against it


@dataclass
class DemoState:
    """The schema, the reference data, the random source and the rows made so far."""

    schema: SchemaSpec
    data: DemoData
    users: list[int]
    rng: random.Random
    scale: float
    rows: dict[str, list[Row]] = field(default_factory=dict)
    contacts_of: list[list[int]] = field(default_factory=list)      # per customer: contact indexes
    orders_of: list[list[int]] = field(default_factory=list)        # per customer: order indexes
    favourites: list[list[int]] = field(default_factory=list)       # per customer: product indexes
    lines_of: list[list[int]] = field(default_factory=list)         # per order: product indexes


class TableMaker:
    """Base of the table makers: shortcuts to the shared state and the schema's options."""

    def __init__(self, demo: DemoState) -> None:
        self.demo = demo
        self.rng = demo.rng
        self.data = demo.data
        self.rows = demo.rows

    def make(self) -> None:
        """Add this maker's table(s) to the shared rows."""
        raise NotImplementedError

    def options(self, table: str, field_key: str) -> tuple[str, ...]:
        """Return the option keys of a choice field, or () if the schema lacks it."""
        try:
            spec = self.demo.schema.table(table).field(field_key)
        except KeyError:
            return ()
        return spec.choices.keys if spec.choices else ()

    def label(self, table: str, field_key: str, key: str) -> str:
        """Return the Chinese label of an option, or the key itself."""
        spec = self.demo.schema.table(table).field(field_key)
        option = spec.choices.option(key) if spec.choices else None
        return option.label.zh if option else key

    def user(self) -> int | None:
        """Return a random user id, or None if there are no users."""
        return self.rng.choice(self.demo.users) if self.demo.users else None

    def customer_weights(self, by_status: Mapping[str, float]) -> list[float]:
        """Return a weight per customer from its grade and status (for picking who buys or is visited)."""
        by_grade = self.data.business.weight_by_grade
        return [by_grade.get(c["grade"], 1.0) * by_status.get(c["status"], 0.5) for c in self.rows["customer"]]


class Customers(TableMaker):
    """Makes `customer`: companies spread over the provinces by weight, with unique names and codes."""

    def make(self) -> None:
        provinces = [k for k in self.options("customer", "province") if k in self.data.provinces]
        weights = {k: self.data.provinces[k].weight for k in provinces}
        names: set[str] = set()
        codes: set[str] = set()
        rows = []
        for _ in range(scaled(300, self.demo.scale)):
            province = pick(self.rng, provinces, weights)
            rows.append(self.customer(province, names, codes))
        self.rows["customer"] = rows

    def customer(self, province: str | None, names: set[str], codes: set[str]) -> Row:
        """Return one customer row; its name and credit code are added to `names` and `codes`."""
        rng = self.rng
        companies = self.data.companies
        prov = self.data.provinces[province] if province else self.data.home
        city, area_code = rng.choice(prov.cities)
        kind, industry = rng.choice(companies.businesses)
        brand, brand_py = rng.choice(companies.brands)
        name, short = self.company_name(prov, city, kind, brand, names)
        code = uscc(rng, prov.gb_code)
        while code in codes:
            code = uscc(rng, prov.gb_code)
        codes.add(code)
        grade = pick(rng, self.options("customer", "grade"), {"A": 1, "B": 3, "C": 4, "D": 2})
        terms = self.payment_terms(grade)
        tags = pick_some(rng, [t for t in self.options("customer", "tags") if t != "hazmat_buyer"], 2)
        licence_no, licence_expiry = self.hazmat_licence(prov, city)
        if licence_no and "hazmat_buyer" in self.options("customer", "tags"):
            tags = [t for t in self.options("customer", "tags") if t in tags or t == "hazmat_buyer"]
        province_label = self.label("customer", "province", province) if province else prov.short
        website = f"https://www.{brand_py}chem.com.cn" if rng.random() < 0.6 else None
        return {
            "name": name,
            "short_name": short,
            "uscc": code,
            "industry": state(self.options("customer", "industry"), industry),
            "grade": grade,
            "status": pick(rng, self.options("customer", "status"),
                           {"prospect": 15, "negotiating": 10, "active": 55, "dormant": 12, "lost": 8}),
            "province": province,
            "city": city.removesuffix("市"),
            "region": state(self.options("customer", "region"), prov.region),
            "address": f"{province_label}{city}{rng.choice(companies.roads)}{rng.randint(1, 399)}号",
            "phone": landline(rng, area_code),
            "website": website,
            "owner": self.user(),
            "credit_limit": self.credit_limit(grade),
            "payment_terms": terms,
            "source": pick(self.rng, self.options("customer", "source"),
                           {"exhibition": 3, "referral": 4, "website": 2, "b2b_platform": 2, "cold_call": 2}),
            "tags": tags,
            "hazardous_licence_no": licence_no,
            "hazardous_licence_expiry": licence_expiry,
            "notes": rng.choice(self.data.texts.customer_notes) if rng.random() < 0.3 else None,
        }

    def company_name(self, prov: Province, city: str, kind: str, brand: str, taken: set[str]) -> tuple[str, str]:
        """Return a company name not yet in `taken` (and add it), plus a short name."""
        suffixes = self.data.companies.suffixes
        place = prov.short if city.endswith("区") or self.rng.random() < 0.4 else city.removesuffix("市")
        name = f"{place}{brand}{kind}{self.rng.choice(suffixes)}"
        for _ in range(30):
            if name not in taken:
                break
            brand = self.rng.choice(self.data.companies.brands)[0]
            name = f"{place}{brand}{kind}{self.rng.choice(suffixes)}"
        else:   # only at very large scales: number the company to keep names unique
            name = f"{place}{brand}{kind}{len(taken) + 1}号有限公司"
        taken.add(name)
        return name, place + brand

    def payment_terms(self, grade: str | None) -> str | None:
        """Return a payment_terms option key suited to the grade (better grades get longer terms)."""
        weights = {"A": {"net_60": 4, "net_90": 3, "acceptance_bill": 3, "net_30": 2},
                   "B": {"net_30": 5, "net_60": 3, "acceptance_bill": 2, "cash_on_delivery": 1},
                   "C": {"net_30": 3, "cash_on_delivery": 3, "prepayment": 3, "acceptance_bill": 1},
                   "D": {"prepayment": 6, "cash_on_delivery": 3}}.get(grade or "", {})
        keys = self.options("customer", "payment_terms")
        return pick(self.rng, keys, {k: weights.get(k, 0.1) for k in keys})

    def credit_limit(self, grade: str | None) -> Decimal:
        """Return a credit limit in CNY suited to the grade."""
        low, high = {"A": (50, 500), "B": (20, 100), "C": (5, 30), "D": (0, 5)}.get(grade or "", (0, 10))
        return Decimal(self.rng.randint(low, high) * 10_000).quantize(CENT)

    def hazmat_licence(self, prov: Province, city: str) -> tuple[str | None, datetime.date | None]:
        """Return a hazardous-chemicals licence number and expiry date, for about half the customers."""
        if self.rng.random() >= 0.45:
            return None, None
        year = self.rng.randint(2021, 2025)
        issued = day_between(self.rng, datetime.date(year, 1, 1), datetime.date(year, 12, 28))
        number = f"{prov.abbr}（{city[0]}）危化经字〔{year}〕{self.rng.randint(1, 99999):06d}"
        return number, plus_days(issued, 3 * 365)


class Contacts(TableMaker):
    """Makes `contact`: 1-5 people per customer, the first one primary."""

    def make(self) -> None:
        rows: list[Row] = []
        customers = self.rows["customer"]
        self.demo.contacts_of = [[] for _ in customers]
        for c_index, customer in enumerate(customers):
            domain = (customer["website"] or "").removeprefix("https://www.")
            for n in range(self.rng.choices((1, 2, 3, 4, 5), (20, 30, 25, 15, 10))[0]):
                self.demo.contacts_of[c_index].append(len(rows))
                rows.append(self.contact(c_index, domain, primary=n == 0))
        self.rows["contact"] = rows

    def contact(self, customer: int, domain: str, primary: bool) -> Row:
        """Return one contact of the customer at index `customer`; `domain` is its website's, if any."""
        rng = self.rng
        details = self.data.contacts
        name, name_py = person_name(rng, self.data.names.family, self.data.names.given)
        title, department = rng.choice(details.job_titles)
        phone = mobile(rng, details.mobile_prefixes)
        email = f"{name_py}@{domain or rng.choice(details.mail_domains)}" if rng.random() < 0.8 else None
        return {
            "customer": customer,
            "name": name,
            "title": title,
            "department": department,
            "mobile": phone,
            "email": email,
            "wechat": phone if rng.random() < 0.5 else f"{name_py.replace('.', '_')}{rng.randint(1, 999)}",
            "is_primary": primary,
            "notes": "节假日请勿电话联系，可发微信。" if rng.random() < 0.05 else None,
        }


class Products(TableMaker):
    """Makes `product` from a sample of the chemicals, and each customer's favourite products."""

    def make(self) -> None:
        catalogue = self.data.catalogue
        chemicals = catalogue.chemicals
        count = min(len(chemicals), max(3, round(60 * self.demo.scale)))
        chosen = sorted(self.rng.sample(range(len(chemicals)), count))
        seq: dict[str, int] = {}
        rows = []
        for i in chosen:
            chem = chemicals[i]
            prefix = catalogue.category_codes.get(chem.category, "GEN")
            seq[prefix] = seq.get(prefix, 0) + 1
            rows.append(self.product(chem, f"{prefix}-{seq[prefix]:03d}"))
        self.rows["product"] = rows
        self.demo.favourites = [self.rng.sample(range(len(rows)), min(len(rows), self.rng.randint(3, 8)))
                                for _ in self.rows["customer"]]

    def product(self, chem: Chemical, code: str) -> Row:
        """Return the product row of a chemical under the product code `code`."""
        rng = self.rng
        hazards = self.options("product", "ghs_hazards")
        purity = Decimal(chem.purity) if chem.purity else None
        impurities = self.data.catalogue.impurity_notes
        formula = f"分子式：{chem.formula}\n主含量：≥ {chem.purity}%\n{rng.choice(impurities)}" \
            if chem.purity else f"分子式：{chem.formula}"
        return {
            "code": code,
            "name": chem.name,
            "english_name": chem.english,
            "cas_number": chem.cas,
            "category": chem.category if chem.category in self.options("product", "category") else None,
            "ghs_hazards": [h for h in chem.hazards if h in hazards],
            "un_number": chem.un,
            "purity": purity,
            "package_spec": chem.package,
            "unit": state(self.options("product", "unit"), chem.unit),
            "unit_price": Decimal(chem.price).quantize(CENT),
            "is_active": rng.random() < 0.92,
            "formula": formula,
            "process_notes": rng.choice(self.data.catalogue.process_notes) if rng.random() < 0.5 else None,
            "sds": None,
            "sds_revision_date": day_between(rng, datetime.date(2020, 6, 1), datetime.date(2025, 10, 31)),
        }


class Orders(TableMaker):
    """Makes `order` and `order_line`: orders over the two demo years, mostly of favourite products."""

    def make(self) -> None:
        customers = self.rows["customer"]
        weights = self.customer_weights(self.data.business.order_weight_by_status)
        if sum(weights) == 0:
            weights = [1.0] * len(customers)
        count = scaled(3000, self.demo.scale)
        dates = sorted(day_between(self.rng, DEMO_START, DEMO_END) for _ in range(count))
        buyers = self.rng.choices(range(len(customers)), weights, k=count)
        self.demo.orders_of = [[] for _ in customers]
        self.rows["order"], self.rows["order_line"], self.demo.lines_of = [], [], []
        for number, (day, customer) in enumerate(zip(dates, buyers, strict=True), start=1):
            self.demo.orders_of[customer].append(len(self.rows["order"]))
            self.rows["order"].append(self.order(number, day, customer))

    def order(self, number: int, day: datetime.date, customer: int) -> Row:
        """Return the order row, after adding its lines; its total is theirs."""
        rng = self.rng
        buyer = self.rows["customer"][customer]
        currency = pick(rng, self.options("order", "currency"), {"CNY": 92, "USD": 6, "EUR": 2})
        contacts = self.demo.contacts_of[customer]
        row: Row = {
            "number": f"SO{day:%Y%m%d}-{number:05d}",
            "customer": customer,
            "contact": rng.choice(contacts) if contacts and rng.random() < 0.85 else None,
            "order_date": day,
            "status": self.order_status(day),
            "currency": currency,
            "total": Decimal(0),
            "delivery_date": plus_days(day, rng.randint(3, 25)),
            "salesperson": buyer["owner"] if rng.random() < 0.85 else self.user(),
            "shipping_address": buyer["address"],
            "notes": rng.choice(self.data.texts.order_notes) if rng.random() < 0.2 else None,
        }
        row["total"] = self.order_lines(len(self.rows["order"]), row, customer)
        return row

    def order_status(self, day: datetime.date) -> str | None:
        """Return an order status option key suited to the order's age on DEMO_END."""
        age = (DEMO_END - day).days
        if age > 60:
            weights = {"completed": 88, "cancelled": 5, "shipped": 7}
        elif age > 15:
            weights = {"shipped": 45, "completed": 35, "in_production": 10, "cancelled": 5, "confirmed": 5}
        else:
            weights = {"draft": 20, "confirmed": 35, "in_production": 25, "shipped": 20}
        keys = self.options("order", "status")
        return pick(self.rng, keys, {k: weights.get(k, 0) for k in keys})

    def order_lines(self, order: int, row: Row, customer: int) -> Decimal:
        """Add 1-5 lines for the order at index `order`; return their total."""
        rng = self.rng
        products = self.rows["product"]
        count = min(len(products), rng.choices((1, 2, 3, 4, 5), (15, 22, 26, 20, 17))[0])
        favourites = self.demo.favourites[customer]
        pool = favourites if rng.random() < 0.7 and len(favourites) >= count else range(len(products))
        chosen = rng.sample(list(pool), count)
        self.demo.lines_of.append(chosen)
        batch = row["status"] in ("shipped", "completed")
        total = Decimal(0)
        for product in chosen:
            line = self.order_line(order, product, row["currency"], row["order_date"] if batch else None)
            total += line["amount"]
            self.rows["order_line"].append(line)
        return total

    def order_line(self, order: int, product: int, currency: str | None, shipped: datetime.date | None) -> Row:
        """Return one order line; its price is the list price ±8 % in the order's currency."""
        rng = self.rng
        item = self.rows["product"][product]
        unit = item["unit"]
        quantity = self.quantity(unit)
        rate = self.data.business.exchange_rates.get(currency or "CNY", Decimal(1))
        price = item["unit_price"] * Decimal(rng.uniform(0.92, 1.08)) / rate
        price = price.quantize(Decimal(1) if unit == "t" else CENT)
        batch_no = None
        if shipped:
            batch_no = f"{plus_days(shipped, -rng.randint(3, 40)):%Y%m%d}{rng.randint(1, 12):02d}"
        return {
            "order": order,
            "product": product,
            "quantity": quantity,
            "unit": unit,
            "unit_price": money(price),
            "amount": money(quantity * price),
            "batch_no": batch_no,
        }

    def quantity(self, unit: str | None) -> Decimal:
        """Return a plausible order quantity for the unit (tonnes in halves, others whole)."""
        rng = self.rng
        if unit == "t":
            return Decimal(rng.randint(2, 60)) / 2
        if unit == "kg":
            return Decimal(rng.choice((25, 50, 100, 200, 500, 1000)) * rng.randint(1, 8))
        if unit == "bag":
            return Decimal(rng.randint(1, 40) * 10)
        if unit == "l":
            return Decimal(rng.randint(1, 25) * 200)
        return Decimal(rng.randint(1, 40))


class Receivables(TableMaker):
    """Makes `invoice` and `payment`: most shipped orders are invoiced, each valid invoice is receivable."""

    def make(self) -> None:
        self.rows["invoice"], self.rows["payment"] = [], []
        billable = ("shipped", "completed")
        for index, order in enumerate(self.rows["order"]):
            if order["status"] in billable and order["total"] > 0 and self.rng.random() < 0.9:
                invoice = self.invoice(index, order)
                self.rows["invoice"].append(invoice)
                if invoice["status"] not in ("void", "red_reversed"):
                    self.rows["payment"].append(self.payment(len(self.rows["invoice"]) - 1, invoice))

    def invoice(self, order_index: int, order: Row) -> Row:
        """Return the VAT invoice of an order, in CNY, numbered after the demo company's province."""
        rng = self.rng
        issued = plus_days(order["order_date"], rng.randint(2, 20), cap=DEMO_END)
        age = (DEMO_END - issued).days
        weights = ({"delivered": 85, "issued": 10, "void": 3, "red_reversed": 2} if age > 30
                   else {"issued": 50, "delivered": 35, "pending": 15})
        keys = self.options("invoice", "status")
        status = pick(rng, keys, {k: weights.get(k, 0) for k in keys})
        grade = self.rows["customer"][order["customer"]]["grade"]
        special = 0.6 if grade == "D" else 0.9
        number = len(self.rows["invoice"]) + 1
        rate = self.data.business.exchange_rates.get(order["currency"] or "CNY", Decimal(1))
        note = f"外币订单，按汇率 {rate} 折算为人民币开票。" if rate != 1 else None
        return {
            "number": f"{issued:%y}{self.data.home.gb_code}2{number:015d}",
            "customer": order["customer"],
            "order": order_index,
            "invoice_type": pick(rng, self.options("invoice", "invoice_type"),
                                 {"vat_special": special, "vat_ordinary": 1 - special}),
            "amount": money(order["total"] * rate),
            "tax_rate": Decimal(13),
            "issue_date": issued,
            "status": status,
            "notes": "已红冲，重新开具。" if status == "red_reversed" else note,
        }

    def payment(self, invoice_index: int, invoice: Row) -> Row:
        """Return the receivable of an invoice, due after the customer's payment terms."""
        rng = self.rng
        customer = self.rows["customer"][invoice["customer"]]
        terms = customer["payment_terms"] or "net_30"
        due = plus_days(invoice["issue_date"], self.data.business.payment_term_days.get(terms, 30))
        amount = invoice["amount"]
        status, paid = self.payment_state(due, amount)
        paid_date = None
        if paid > 0:
            paid_date = min(DEMO_END, max(invoice["issue_date"], plus_days(due, rng.randint(-10, 20))))
        method = None
        if paid > 0:
            method = terms if terms in ("acceptance_bill", "letter_of_credit") else \
                pick(rng, ("bank_transfer", "cash"), {"bank_transfer": 95, "cash": 5})
            method = method if method in self.options("payment", "payment_method") else None
        return {
            "number": f"AR{invoice['issue_date']:%Y%m}-{len(self.rows['payment']) + 1:05d}",
            "customer": invoice["customer"],
            "order": invoice["order"],
            "invoice": invoice_index,
            "amount_due": amount,
            "due_date": due,
            "paid_amount": paid,
            "paid_date": paid_date,
            "payment_method": method,
            "status": status,
            "notes": "已发催款函。" if status == "overdue" and rng.random() < 0.4 else None,
        }

    def payment_state(self, due: datetime.date, amount: Decimal) -> tuple[str | None, Decimal]:
        """Return (status, amount received) of a receivable due on `due`, judged on DEMO_END."""
        keys = self.options("payment", "status")
        roll = self.rng.random()
        if due > DEMO_END:
            wanted = "paid" if roll < 0.15 else "partial" if roll < 0.25 else "unpaid"
        else:
            wanted = "paid" if roll < 0.82 else "partial" if roll < 0.88 else "overdue"
        if wanted == "paid":
            return state(keys, "paid"), amount
        if wanted == "partial":
            return state(keys, "partial"), money(amount * Decimal(self.rng.randint(2, 8)) / 10)
        return state(keys, wanted), Decimal("0.00")


class Feedback(TableMaker):
    """Makes `feedback`: complaints, suggestions and praise, mostly about an order, sorted by date."""

    def make(self) -> None:
        weights = self.customer_weights(self.data.business.order_weight_by_status)
        if sum(weights) == 0:
            weights = [1.0] * len(weights)
        customers = self.rng.choices(range(len(weights)), weights, k=scaled(350, self.demo.scale))
        rows = [self.feedback_row(c) for c in customers]
        self.rows["feedback"] = sorted(rows, key=lambda r: r["feedback_date"])

    def feedback_row(self, customer: int) -> Row:
        """Return one feedback of the customer at index `customer`."""
        rng = self.rng
        texts = self.data.texts
        orders = self.demo.orders_of[customer]
        order = rng.choice(orders) if orders and rng.random() < 0.7 else None
        product: int | None
        if order is not None:
            day = plus_days(self.rows["order"][order]["order_date"], rng.randint(5, 40), cap=DEMO_END)
            product = rng.choice(self.demo.lines_of[order])
        else:
            day = day_between(rng, DEMO_START, DEMO_END)
            product = rng.choice(self.demo.favourites[customer]) if rng.random() < 0.5 else None
        kind = pick(rng, self.options("feedback", "type"), {"complaint": 35, "suggestion": 35, "praise": 30})
        subject, content = rng.choice(texts.feedback.get(kind or "") or next(iter(texts.feedback.values())))
        status = self.feedback_status(day)
        product_name = self.rows["product"][product]["name"] if product is not None else "产品"
        order_no = self.rows["order"][order]["number"] if order is not None else ""
        contacts = self.demo.contacts_of[customer]
        scores = self.data.business.satisfaction.get(kind or "") or (3,)
        return {
            "customer": customer,
            "contact": rng.choice(contacts) if contacts and rng.random() < 0.8 else None,
            "order": order,
            "product": product,
            "feedback_date": day,
            "type": kind,
            "satisfaction": rng.choice(scores) if rng.random() < 0.9 else None,
            "subject": subject,
            "content": content.format(product=product_name, order=order_no),
            "status": status,
            "handler": self.user() if status != "new" else None,
            "resolution": rng.choice(texts.resolutions.get(kind or "", ("已处理。",)))
            if status in ("resolved", "closed") else None,
        }

    def feedback_status(self, day: datetime.date) -> str | None:
        """Return a feedback status option key suited to its age on DEMO_END."""
        age = (DEMO_END - day).days
        weights = ({"closed": 60, "resolved": 38, "processing": 2} if age > 45
                   else {"new": 35, "processing": 40, "resolved": 25})
        keys = self.options("feedback", "status")
        return pick(self.rng, keys, {k: weights.get(k, 0) for k in keys})


class FollowUps(TableMaker):
    """Makes `follow_up`: calls, visits and messages to customers, sorted by date."""

    def make(self) -> None:
        weights = self.customer_weights(self.data.business.follow_up_weight_by_status)
        customers = self.rng.choices(range(len(weights)), weights, k=scaled(1500, self.demo.scale))
        rows = [self.follow_up(c) for c in customers]
        self.rows["follow_up"] = sorted(rows, key=lambda r: r["visit_date"])

    def follow_up(self, customer: int) -> Row:
        """Return one follow-up of the customer at index `customer`."""
        rng = self.rng
        details = self.data.texts.follow_up_details
        channel = pick(rng, self.options("follow_up", "channel"),
                       {"phone": 40, "visit": 20, "wechat": 30, "email": 10})
        contacts = self.demo.contacts_of[customer]
        contact = rng.choice(contacts) if contacts and rng.random() < 0.9 else None
        contact_name = self.rows["contact"][contact]["name"] if contact is not None else "客户"
        product = self.rows["product"][rng.choice(self.demo.favourites[customer])]["name"]
        detail = rng.choice(details.get(channel or "") or next(iter(details.values())))
        day = day_between(rng, DEMO_START, DEMO_END)
        owner = self.rows["customer"][customer]["owner"]
        return {
            "customer": customer,
            "contact": contact,
            "visit_date": day,
            "channel": channel,
            "subject": rng.choice(self.data.texts.follow_up_subjects),
            "content": detail.format(contact=contact_name, product=product, qty=rng.randint(5, 200)),
            "next_date": plus_days(day, rng.randint(7, 45)) if rng.random() < 0.7 else None,
            "owner": owner if owner is not None and rng.random() < 0.8 else self.user(),
        }


MAKERS: tuple[type[TableMaker], ...] = (Customers, Contacts, Products, Orders, Receivables, Feedback, FollowUps)
GENERATION_ORDER = ("customer", "contact", "product", "order", "order_line", "invoice", "payment",
                    "feedback", "follow_up")


def build_demo_rows(schema: SchemaSpec, user_ids: list[int], seed: int = 2024,
                    scale: float = 1.0, data_dir: Path | None = None) -> dict[str, list[Row]]:
    """Return demo rows per table of the default schema, parents before children.

    Link values are 0-based indexes into the target table's list; user values come from
    `user_ids` (None if it is empty). An empty multi-choice is None, as `validate_value` gives it.
    Fields the schema lacks are dropped; tables it lacks are left out. The reference data is read
    from `data_dir` (default: the package's data folder); a bad data file raises ValueError.
    """
    demo = DemoState(schema, load_reference_data(data_dir), list(user_ids), random.Random(seed), scale)
    for maker in MAKERS:
        maker(demo).make()
    return schema_rows(schema, demo.rows)


def schema_rows(schema: SchemaSpec, rows: dict[str, list[Row]]) -> dict[str, list[Row]]:
    """Return the rows of the tables the schema has, in GENERATION_ORDER, keeping only its fields."""
    result: dict[str, list[Row]] = {}
    for key in GENERATION_ORDER:
        try:
            table = schema.table(key)
        except KeyError:
            continue
        keys = [f.key for f in table.fields]
        result[key] = [{k: None if row[k] == [] else row[k] for k in keys if k in row} for row in rows[key]]
    return result
