"""The demo's reference data, read from the YAML files of a data folder into typed records.

`load_reference_data` reads the folder (by default this package's `data/`); a missing file or a
value of the wrong kind raises a ValueError that names the file and says what is wrong.
"""
from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeVar

import yaml

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_FILES = ("provinces.yaml", "names.yaml", "companies.yaml", "contacts.yaml", "chemicals.yaml", "texts.yaml",
              "business.yaml")

Pair = tuple[str, str]
T = TypeVar("T")


class Province(NamedTuple):
    abbr: str                      # one-character abbreviation used on licences, e.g. 苏
    short: str                     # name without 省/市/自治区， used in company names
    gb_code: str                   # first two digits of the GB/T 2260 division code
    region: str                    # sales_region option key
    weight: float                  # how many demo customers come from here
    cities: tuple[Pair, ...]       # (city or district, telephone area code)


class Chemical(NamedTuple):
    name: str
    english: str
    cas: str
    formula: str
    category: str                  # product_category option key
    hazards: tuple[str, ...]       # ghs_hazard option keys
    un: str | None
    purity: str | None             # percent
    package: str
    unit: str                      # unit option key the price is quoted in
    price: str                     # CNY per unit


@dataclass(frozen=True)
class Names:
    """names.yaml: (character, pinyin) pairs of family names and of given-name characters."""

    family: tuple[Pair, ...]
    given: tuple[Pair, ...]


@dataclass(frozen=True)
class Companies:
    """companies.yaml: the parts of company names and addresses."""

    brands: tuple[Pair, ...]       # (brand, pinyin for the website)
    businesses: tuple[Pair, ...]   # (business words in the name, industry option key)
    suffixes: tuple[str, ...]      # each suffix repeated as often as its weight says
    roads: tuple[str, ...]


@dataclass(frozen=True)
class ContactDetails:
    """contacts.yaml: job titles, mobile prefixes and free mail domains."""

    job_titles: tuple[Pair, ...]   # (title, department)
    mobile_prefixes: tuple[str, ...]
    mail_domains: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """chemicals.yaml: the chemicals products are made from, with their code prefixes and notes."""

    chemicals: tuple[Chemical, ...]
    category_codes: dict[str, str]         # product_category option key -> product code prefix
    impurity_notes: tuple[str, ...]
    process_notes: tuple[str, ...]


@dataclass(frozen=True)
class Texts:
    """texts.yaml: notes, follow-up and feedback texts; keys are option keys of the schema."""

    customer_notes: tuple[str, ...]
    order_notes: tuple[str, ...]
    follow_up_subjects: tuple[str, ...]
    follow_up_details: dict[str, tuple[str, ...]]     # channel -> texts with {contact} {product} {qty}
    feedback: dict[str, tuple[Pair, ...]]             # type -> (subject, content with {product} {order})
    resolutions: dict[str, tuple[str, ...]]           # type -> how it was resolved


@dataclass(frozen=True)
class Business:
    """business.yaml: the demo company's home, exchange rates, payment terms and weights."""

    home_province: str                                # key of provinces.yaml
    exchange_rates: dict[str, Decimal]                # CNY per unit of a currency
    payment_term_days: dict[str, int]
    satisfaction: dict[str, tuple[int, ...]]          # feedback type -> possible scores
    weight_by_grade: dict[str, float]
    order_weight_by_status: dict[str, float]
    follow_up_weight_by_status: dict[str, float]


@dataclass(frozen=True)
class DemoData:
    """Everything the demo builder reads from a data folder."""

    provinces: dict[str, Province]
    names: Names
    companies: Companies
    contacts: ContactDetails
    catalogue: Catalogue
    texts: Texts
    business: Business

    @property
    def home(self) -> Province:
        """Return the province the demo company itself is registered in."""
        return self.provinces[self.business.home_province]


def load_reference_data(data_dir: Path | None = None) -> DemoData:
    """Return the reference data read from `data_dir` (default: this package's data folder).

    Raises ValueError naming the file and the problem if a file is missing or malformed.
    """
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if not folder.is_dir():
        raise ValueError(f"demo data folder {folder} does not exist (it should hold {', '.join(DATA_FILES)})")
    provinces = read_provinces(DataFile(folder / "provinces.yaml", ("provinces",)))
    return DemoData(
        provinces=provinces,
        names=read_names(DataFile(folder / "names.yaml", ("family_names", "given_names"))),
        companies=read_companies(DataFile(folder / "companies.yaml", ("brands", "businesses", "suffixes", "roads"))),
        contacts=read_contacts(DataFile(folder / "contacts.yaml", ("job_titles", "mobile_prefixes", "mail_domains"))),
        catalogue=read_catalogue(DataFile(folder / "chemicals.yaml",
                                          ("category_codes", "chemicals", "impurity_notes", "process_notes"))),
        texts=read_texts(DataFile(folder / "texts.yaml", ("customer_notes", "order_notes", "follow_up_subjects",
                                                          "follow_up_details", "feedback", "resolutions"))),
        business=read_business(DataFile(folder / "business.yaml", (
            "home_province", "exchange_rates", "payment_term_days", "satisfaction", "weight_by_grade",
            "order_weight_by_status", "follow_up_weight_by_status")), provinces),
    )


# -- one reader per file ---------------------------------------------------------------------


def read_provinces(f: DataFile) -> dict[str, Province]:
    """Return provinces.yaml as province option key -> Province."""
    result = {}
    for key, item in f.mapping(f.root["provinces"], "provinces").items():
        where = f"provinces > {key}"
        f.keys(item, where, ("abbr", "short", "gb_code", "region", "weight", "cities"))
        cities = f.mapping(item["cities"], f"{where} > cities")
        result[key] = Province(
            abbr=f.text(item["abbr"], f"{where} > abbr"),
            short=f.text(item["short"], f"{where} > short"),
            gb_code=f.digits(item["gb_code"], f"{where} > gb_code", (2,), "32"),
            region=f.text(item["region"], f"{where} > region"),
            weight=f.number(item["weight"], f"{where} > weight"),
            cities=tuple((city, f.digits(code, f"{where} > cities > {city}", (3, 4), "010"))
                         for city, code in cities.items()),
        )
    return result


def read_names(f: DataFile) -> Names:
    """Return names.yaml: family names and given-name characters with their pinyin."""
    return Names(family=f.pairs(f.root["family_names"], "family_names"),
                 given=f.pairs(f.root["given_names"], "given_names", least=2))


def read_companies(f: DataFile) -> Companies:
    """Return companies.yaml: brands, business words, suffixes (repeated by weight) and roads."""
    suffixes = f.mapping(f.root["suffixes"], "suffixes")
    return Companies(
        brands=f.pairs(f.root["brands"], "brands"),
        businesses=f.pairs(f.root["businesses"], "businesses"),
        suffixes=tuple(suffix for suffix, weight in suffixes.items()
                       for _ in range(f.count(weight, f"suffixes > {suffix}"))),
        roads=f.texts(f.root["roads"], "roads"),
    )


def read_contacts(f: DataFile) -> ContactDetails:
    """Return contacts.yaml: job titles with departments, mobile prefixes and mail domains."""
    prefixes = f.listing(f.root["mobile_prefixes"], "mobile_prefixes")
    return ContactDetails(
        job_titles=f.pairs(f.root["job_titles"], "job_titles"),
        mobile_prefixes=tuple(f.digits(p, f"mobile_prefixes > item {n}", (3,), "138")
                              for n, p in enumerate(prefixes, 1)),
        mail_domains=f.texts(f.root["mail_domains"], "mail_domains"),
    )


CHEMICAL_KEYS = ("name", "english", "cas", "formula", "category", "hazards", "un", "purity", "package", "unit",
                 "price")


def read_catalogue(f: DataFile) -> Catalogue:
    """Return chemicals.yaml: the chemicals, category code prefixes, impurity and process notes."""
    chemicals = []
    for n, item in enumerate(f.listing(f.root["chemicals"], "chemicals"), 1):
        name = item.get("name") if isinstance(item, dict) else None
        where = f"chemicals > item {n}" + (f" ({name})" if isinstance(name, str) and name else "")
        f.keys(item, where, CHEMICAL_KEYS, optional=("hazards", "un", "purity"))
        hazards = item.get("hazards")
        chemicals.append(Chemical(
            name=f.text(item["name"], f"{where} > name"),
            english=f.text(item["english"], f"{where} > english"),
            cas=f.text(item["cas"], f"{where} > cas"),
            formula=f.text(item["formula"], f"{where} > formula"),
            category=f.text(item["category"], f"{where} > category"),
            hazards=() if hazards is None else f.texts(hazards, f"{where} > hazards", least=0),
            un=f.optional(item.get("un"), f"{where} > un", f.text),
            purity=f.optional(item.get("purity"), f"{where} > purity", f.decimal_text),
            package=f.text(item["package"], f"{where} > package"),
            unit=f.text(item["unit"], f"{where} > unit"),
            price=f.decimal_text(item["price"], f"{where} > price", example="6800"),
        ))
    codes = f.mapping(f.root["category_codes"], "category_codes", least=0)
    return Catalogue(
        chemicals=tuple(chemicals),
        category_codes={k: f.text(v, f"category_codes > {k}") for k, v in codes.items()},
        impurity_notes=f.texts(f.root["impurity_notes"], "impurity_notes"),
        process_notes=f.texts(f.root["process_notes"], "process_notes"),
    )


FOLLOW_UP_FIELDS = ("contact", "product", "qty")
FEEDBACK_FIELDS = ("product", "order")


def read_texts(f: DataFile) -> Texts:
    """Return texts.yaml: notes, follow-up subjects and details, feedback texts and resolutions."""
    details = {channel: tuple(f.template(t, f"follow_up_details > {channel} > item {n}", FOLLOW_UP_FIELDS)
                              for n, t in enumerate(f.listing(items, f"follow_up_details > {channel}"), 1))
               for channel, items in f.mapping(f.root["follow_up_details"], "follow_up_details").items()}
    feedback = {}
    for kind, items in f.mapping(f.root["feedback"], "feedback").items():
        texts = []
        for n, item in enumerate(f.listing(items, f"feedback > {kind}"), 1):
            where = f"feedback > {kind} > item {n}"
            f.keys(item, where, ("subject", "content"))
            texts.append((f.text(item["subject"], f"{where} > subject"),
                          f.template(item["content"], f"{where} > content", FEEDBACK_FIELDS)))
        feedback[kind] = tuple(texts)
    resolutions = f.mapping(f.root["resolutions"], "resolutions", least=0)
    return Texts(
        customer_notes=f.texts(f.root["customer_notes"], "customer_notes"),
        order_notes=f.texts(f.root["order_notes"], "order_notes"),
        follow_up_subjects=f.texts(f.root["follow_up_subjects"], "follow_up_subjects"),
        follow_up_details=details,
        feedback=feedback,
        resolutions={kind: f.texts(items, f"resolutions > {kind}") for kind, items in resolutions.items()},
    )


def read_business(f: DataFile, provinces: dict[str, Province]) -> Business:
    """Return business.yaml; its home_province must be a key of provinces.yaml."""
    home = f.text(f.root["home_province"], "home_province")
    if home not in provinces:
        f.fail("home_province", f"'{home}' is not a province of provinces.yaml")
    rates = f.mapping(f.root["exchange_rates"], "exchange_rates", least=0)
    terms = f.mapping(f.root["payment_term_days"], "payment_term_days", least=0)
    scores = f.mapping(f.root["satisfaction"], "satisfaction", least=0)
    return Business(
        home_province=home,
        exchange_rates={k: Decimal(f.decimal_text(v, f"exchange_rates > {k}", positive=True, example="7.10"))
                        for k, v in rates.items()},
        payment_term_days={k: f.count(v, f"payment_term_days > {k}", least=0) for k, v in terms.items()},
        satisfaction={kind: tuple(f.count(s, f"satisfaction > {kind}", least=0)
                                  for s in f.listing(items, f"satisfaction > {kind}"))
                      for kind, items in scores.items()},
        weight_by_grade=f.weights(f.root["weight_by_grade"], "weight_by_grade"),
        order_weight_by_status=f.weights(f.root["order_weight_by_status"], "order_weight_by_status"),
        follow_up_weight_by_status=f.weights(f.root["follow_up_weight_by_status"], "follow_up_weight_by_status"),
    )


# -- reading values --------------------------------------------------------------------------


def _shown(value: Any) -> str:
    """Return how a wrong value is quoted in a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class DataFile:
    """One YAML file of a data folder, parsed; its methods return checked values or raise ValueError.

    Every message starts with "demo data file <path>: " and says where in the file the problem is,
    e.g. "chemicals > item 4 (乙醇) > price".
    """

    def __init__(self, path: Path, keys: tuple[str, ...]) -> None:
        self.path = path
        if not path.is_file():
            raise ValueError(f"demo data file {path} is missing (a demo data folder holds {', '.join(DATA_FILES)})")
        try:
            root = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"demo data file {path}: is not UTF-8 text") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f" (line {mark.line + 1})" if mark else ""
            raise ValueError(f"demo data file {path}: is not valid YAML{line}: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"demo data file {path}: is not valid YAML: {exc}") from None
        except ValueError as exc:   # YAML took an unquoted value for a date that does not exist, e.g. 7732-18-50
            raise ValueError(f"demo data file {path}: a value YAML reads as a date is not one ({exc}); "
                             "put codes such as CAS numbers in double quotes") from None
        if not isinstance(root, dict):
            self.fail("", f"must be a mapping with the keys {', '.join(keys)}")
        self.keys(root, "", keys)
        self.root: dict[str, Any] = root

    def fail(self, where: str, problem: str) -> NoReturn:
        """Raise the ValueError for `problem` at `where` ('' for the whole file)."""
        raise ValueError(f"demo data file {self.path}: {where + ': ' if where else ''}{problem}")

    def keys(self, value: Any, where: str, expected: Iterable[str], optional: Iterable[str] = ()) -> None:
        """Fail unless `value` is a mapping with the expected keys (optional ones may be left out)."""
        expected, optional = tuple(expected), set(optional)
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping with the keys {', '.join(expected)}, not {_shown(value)}")
        missing = [k for k in expected if k not in value and k not in optional]
        if missing:
            self.fail(where, f"the key '{missing[0]}' is missing")
        unknown = [k for k in value if k not in expected]
        if unknown:
            self.fail(where, f"unknown key '{unknown[0]}' (expected {', '.join(expected)})")

    def text(self, value: Any, where: str) -> str:
        """Return `value` if it is non-empty text."""
        if not isinstance(value, str):
            self.fail(where, f"must be text, not {_shown(value)}")
        if not value.strip():
            self.fail(where, "must not be empty")
        return value

    def digits(self, value: Any, where: str, lengths: tuple[int, ...], example: str) -> str:
        """Return `value` if it is text of `lengths` digits (numbers are refused: YAML drops leading zeros)."""
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) not in lengths:
            size = " or ".join(map(str, lengths))
            self.fail(where, f"must be {size} digits in double quotes, such as \"{example}\", not {_shown(value)}")
        return value

    def number(self, value: Any, where: str) -> float:
        """Return `value` if it is a number of at least 0."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            self.fail(where, f"must be a number of at least 0, not {_shown(value)}")
        return value

    def count(self, value: Any, where: str, least: int = 1) -> int:
        """Return `value` if it is a whole number of at least `least`."""
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            self.fail(where, f"must be a whole number of at least {least}, not {_shown(value)}")
        return value

    def decimal_text(self, value: Any, where: str, positive: bool = False, example: str = "99.5") -> str:
        """Return a decimal number as text, e.g. "99.7"; YAML numbers are accepted and turned into text."""
        text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        try:
            number = Decimal(text) if isinstance(text, str) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0 or (positive and number == 0):
            least = "greater than 0" if positive else "of at least 0"
            self.fail(where, f"must be a number {least} in double quotes, such as \"{example}\", not {_shown(value)}")
        return text

    def optional(self, value: Any, where: str, read: Callable[[Any, str], T]) -> T | None:
        """Return None for a null value, else `read(value, where)`."""
        return None if value is None else read(value, where)

    def mapping(self, value: Any, where: str, least: int = 1) -> dict[str, Any]:
        """Return `value` if it is a mapping with text keys and at least `least` entries."""
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping (key: value lines), not {_shown(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(where, f"the key {_shown(key)} must be text; put it in double quotes")
        if len(value) < least:
            self.fail(where, f"must have at least {least} entr{'y' if least == 1 else 'ies'}")
        return value

    def listing(self, value: Any, where: str, least: int = 1) -> list[Any]:
        """Return `value` if it is a list of at least `least` items."""
        if not isinstance(value, list):
            self.fail(where, f"must be a list (lines starting with '- '), not {_shown(value)}")
        if len(value) < least:
            self.fail(where, f"must list at least {least} item{'' if least == 1 else 's'}")
        return value

    def texts(self, value: Any, where: str, least: int = 1) -> tuple[str, ...]:
        """Return a list of non-empty texts as a tuple."""
        items = self.listing(value, where, least)
        return tuple(self.text(item, f"{where} > item {n}") for n, item in enumerate(items, 1))

    def pairs(self, value: Any, where: str, least: int = 1) -> tuple[Pair, ...]:
        """Return a mapping of text to text as (key, value) pairs, in the file's order."""
        items = self.mapping(value, where, least)
        return tuple((key, self.text(item, f"{where} > {key}")) for key, item in items.items())

    def weights(self, value: Any, where: str) -> dict[str, float]:
        """Return a mapping of option keys to weights of at least 0."""
        items = self.mapping(value, where, least=0)
        return {key: self.number(item, f"{where} > {key}") for key, item in items.items()}

    def template(self, value: Any, where: str, fields: tuple[str, ...]) -> str:
        """Return a text whose {placeholders} are all among `fields`."""
        text = self.text(value, where)
        try:
            used = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError:
            self.fail(where, "has an unmatched { or }; write {{ or }} for a brace itself")
        unknown = [name for name in used if name not in fields]
        if unknown:
            allowed = ", ".join("{" + name + "}" for name in fields)
            self.fail(where, f"uses {{{unknown[0]}}}, but only {allowed} are filled in")
        return text
