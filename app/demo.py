"""Deterministic Chinese demo data for the default schema of a chemical-products company.

`build_demo_rows` returns plain Python rows per table (parents before children). Link fields hold
the 0-based index of the target row in the target table's list; the inserter maps them to ids.
Only `random.Random(seed)` is used and every date lies in 2024-2025, so each run gives the same rows.
"""
from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from app.fields.values import USCC_CHARS, uscc_check_char
from app.schema.model import SchemaSpec

Row = dict[str, Any]

DEMO_START = datetime.date(2024, 1, 1)
DEMO_END = datetime.date(2025, 12, 31)   # the demo's "today": statuses are judged against it
CENT = Decimal("0.01")
FX_RATES = {"CNY": Decimal("1"), "USD": Decimal("7.10"), "EUR": Decimal("7.80")}  # CNY per unit

# -- reference data --------------------------------------------------------------------------


class Province(NamedTuple):
    abbr: str                      # one-character abbreviation used on licences, e.g. 苏
    short: str                     # name without 省/市/自治区， used in company names
    gb_code: str                   # first two digits of the GB/T 2260 division code
    region: str                    # sales_region option key
    weight: float                  # how many demo customers come from here
    cities: tuple[tuple[str, str], ...]   # (city or district, telephone area code)


PROVINCES: dict[str, Province] = {
    "beijing": Province("京", "北京", "11", "north_china", 2, (("朝阳区", "010"), ("房山区", "010"), ("大兴区", "010"))),
    "tianjin": Province("津", "天津", "12", "north_china", 2, (("滨海新区", "022"), ("西青区", "022"))),
    "hebei": Province("冀", "河北", "13", "north_china", 4, (("石家庄市", "0311"), ("沧州市", "0317"), ("唐山市", "0315"), ("邢台市", "0319"))),
    "shanxi": Province("晋", "山西", "14", "north_china", 1, (("太原市", "0351"), ("长治市", "0355"))),
    "inner_mongolia": Province("蒙", "内蒙古", "15", "north_china", 1, (("呼和浩特市", "0471"), ("鄂尔多斯市", "0477"), ("乌海市", "0473"))),
    "liaoning": Province("辽", "辽宁", "21", "northeast", 3, (("沈阳市", "024"), ("大连市", "0411"), ("盘锦市", "0427"), ("营口市", "0417"))),
    "jilin": Province("吉", "吉林", "22", "northeast", 1, (("长春市", "0431"), ("吉林市", "0432"))),
    "heilongjiang": Province("黑", "黑龙江", "23", "northeast", 1, (("哈尔滨市", "0451"), ("大庆市", "0459"))),
    "shanghai": Province("沪", "上海", "31", "east_china", 6, (("金山区", "021"), ("浦东新区", "021"), ("奉贤区", "021"), ("嘉定区", "021"))),
    "jiangsu": Province("苏", "江苏", "32", "east_china", 14, (("南京市", "025"), ("苏州市", "0512"), ("常州市", "0519"), ("无锡市", "0510"), ("南通市", "0513"), ("泰州市", "0523"), ("连云港市", "0518"), ("盐城市", "0515"), ("镇江市", "0511"))),
    "zhejiang": Province("浙", "浙江", "33", "east_china", 10, (("杭州市", "0571"), ("宁波市", "0574"), ("绍兴市", "0575"), ("嘉兴市", "0573"), ("台州市", "0576"), ("衢州市", "0570"))),
    "anhui": Province("皖", "安徽", "34", "east_china", 3, (("合肥市", "0551"), ("安庆市", "0556"), ("马鞍山市", "0555"))),
    "fujian": Province("闽", "福建", "35", "east_china", 3, (("福州市", "0591"), ("厦门市", "0592"), ("泉州市", "0595"))),
    "jiangxi": Province("赣", "江西", "36", "east_china", 2, (("南昌市", "0791"), ("九江市", "0792"))),
    "shandong": Province("鲁", "山东", "37", "east_china", 12, (("济南市", "0531"), ("青岛市", "0532"), ("淄博市", "0533"), ("东营市", "0546"), ("潍坊市", "0536"), ("烟台市", "0535"), ("滨州市", "0543"))),
    "henan": Province("豫", "河南", "41", "central_china", 3, (("郑州市", "0371"), ("洛阳市", "0379"), ("濮阳市", "0393"), ("新乡市", "0373"))),
    "hubei": Province("鄂", "湖北", "42", "central_china", 3, (("武汉市", "027"), ("宜昌市", "0717"), ("荆州市", "0716"))),
    "hunan": Province("湘", "湖南", "43", "central_china", 2, (("长沙市", "0731"), ("岳阳市", "0730"), ("株洲市", "0731"))),
    "guangdong": Province("粤", "广东", "44", "south_china", 10, (("广州市", "020"), ("深圳市", "0755"), ("佛山市", "0757"), ("东莞市", "0769"), ("惠州市", "0752"), ("珠海市", "0756"), ("茂名市", "0668"))),
    "guangxi": Province("桂", "广西", "45", "south_china", 1, (("南宁市", "0771"), ("柳州市", "0772"), ("钦州市", "0777"))),
    "hainan": Province("琼", "海南", "46", "south_china", 0.5, (("海口市", "0898"), ("儋州市", "0898"))),
    "chongqing": Province("渝", "重庆", "50", "southwest", 2, (("长寿区", "023"), ("涪陵区", "023"))),
    "sichuan": Province("川", "四川", "51", "southwest", 3, (("成都市", "028"), ("泸州市", "0830"), ("德阳市", "0838"), ("自贡市", "0813"))),
    "guizhou": Province("黔", "贵州", "52", "southwest", 1, (("贵阳市", "0851"), ("遵义市", "0851"))),
    "yunnan": Province("滇", "云南", "53", "southwest", 1, (("昆明市", "0871"), ("曲靖市", "0874"))),
    "tibet": Province("藏", "西藏", "54", "southwest", 0.2, (("拉萨市", "0891"),)),
    "shaanxi": Province("陕", "陕西", "61", "northwest", 2, (("西安市", "029"), ("榆林市", "0912"), ("宝鸡市", "0917"))),
    "gansu": Province("甘", "甘肃", "62", "northwest", 1, (("兰州市", "0931"), ("金昌市", "0935"))),
    "qinghai": Province("青", "青海", "63", "northwest", 0.5, (("西宁市", "0971"), ("格尔木市", "0979"))),
    "ningxia": Province("宁", "宁夏", "64", "northwest", 1, (("银川市", "0951"), ("石嘴山市", "0952"))),
    "xinjiang": Province("新", "新疆", "65", "northwest", 1, (("乌鲁木齐市", "0991"), ("克拉玛依市", "0990"), ("昌吉市", "0994"))),
}

SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("潘", "pan"),
    ("袁", "yuan"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"), ("叶", "ye"),
    ("程", "cheng"), ("魏", "wei"), ("沈", "shen"), ("顾", "gu"),
)
GIVEN_NAMES = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"),
    ("平", "ping"), ("刚", "gang"), ("建", "jian"), ("华", "hua"), ("文", "wen"), ("辉", "hui"),
    ("鹏", "peng"), ("宇", "yu"), ("晨", "chen"), ("浩", "hao"), ("婷", "ting"), ("雪", "xue"),
    ("琳", "lin"), ("斌", "bin"), ("峰", "feng"), ("海", "hai"), ("亮", "liang"), ("志", "zhi"),
    ("国", "guo"), ("红", "hong"), ("玲", "ling"), ("燕", "yan"), ("春", "chun"), ("东", "dong"),
    ("新", "xin"), ("凯", "kai"), ("俊", "jun"), ("佳", "jia"), ("欣", "xin"), ("颖", "ying"),
)
BRANDS = (
    ("华源", "huayuan"), ("金鼎", "jinding"), ("宏达", "hongda"), ("永盛", "yongsheng"), ("鑫泰", "xintai"),
    ("天成", "tiancheng"), ("瑞丰", "ruifeng"), ("嘉禾", "jiahe"), ("振华", "zhenhua"), ("新宇", "xinyu"),
    ("海德", "haide"), ("润泽", "runze"), ("博达", "boda"), ("凯盛", "kaisheng"), ("联创", "lianchuang"),
    ("丰源", "fengyuan"), ("正和", "zhenghe"), ("汇通", "huitong"), ("富达", "fuda"), ("盛泰", "shengtai"),
    ("安达", "anda"), ("华信", "huaxin"), ("明远", "mingyuan"), ("科隆", "kelong"), ("金石", "jinshi"),
    ("晨光", "chenguang"), ("银河", "yinhe"), ("泰和", "taihe"), ("昌盛", "changsheng"), ("巨龙", "julong"),
    ("宝丰", "baofeng"), ("三江", "sanjiang"), ("信达", "xinda"), ("启明", "qiming"), ("亿成", "yicheng"),
    ("普利", "puli"), ("康达", "kangda"), ("同创", "tongchuang"), ("天润", "tianrun"), ("安泰", "antai"),
    ("众诚", "zhongcheng"), ("伟业", "weiye"), ("华峰", "huafeng"), ("裕隆", "yulong"), ("恒通", "hengtong"),
    ("中科", "zhongke"), ("绿洲", "lvzhou"), ("东岳", "dongyue"), ("蓝海", "lanhai"), ("长青", "changqing"),
)
# (business words in the company name, industry option key)
BUSINESS_KINDS = (
    ("涂料", "coatings"), ("油墨", "coatings"), ("树脂", "coatings"), ("塑胶", "plastics"),
    ("塑料制品", "plastics"), ("橡胶", "plastics"), ("医药化工", "pharma"), ("制药", "pharma"),
    ("生物医药", "pharma"), ("农化", "pesticide"), ("作物科技", "pesticide"), ("印染", "textile"),
    ("纺织助剂", "textile"), ("电子材料", "electronics"), ("电子科技", "electronics"), ("日化", "daily_chemical"),
    ("洗涤用品", "daily_chemical"), ("水处理科技", "water_treatment"), ("环保科技", "water_treatment"),
    ("建材", "construction"), ("新型建材", "construction"), ("精细化工", "fine_chemical"), ("化工", "fine_chemical"),
    ("化学", "fine_chemical"), ("新材料科技", "fine_chemical"), ("新能源材料", "new_energy"), ("电池材料", "new_energy"),
    ("表面处理", "metallurgy"), ("冶金材料", "metallurgy"), ("食品配料", "food_feed"), ("饲料", "food_feed"),
    ("化工贸易", "trading"), ("化学品进出口", "trading"), ("化工物资", "trading"),
)
COMPANY_SUFFIXES = ("有限公司",) * 6 + ("股份有限公司",) * 2 + ("有限责任公司",)
ROADS = ("化工园区纬三路", "经济技术开发区长江路", "高新区科技大道", "沿江工业园港城路", "临港工业区海滨路",
         "工业园区兴业路", "石化园区环园北路", "开发区创业大道", "化学工业园区滨江路", "新材料产业园振兴路")
JOB_TITLES = (  # (title, department)
    ("采购经理", "采购部"), ("采购专员", "采购部"), ("总经理", "总经办"), ("副总经理", "总经办"),
    ("技术总监", "技术部"), ("研发工程师", "研发中心"), ("财务经理", "财务部"), ("会计", "财务部"),
    ("仓库主管", "仓储物流部"), ("质量经理", "质量部"), ("生产厂长", "生产部"), ("安环主管", "安全环保部"),
)
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
                   "155", "156", "157", "158", "159", "166", "177", "180", "181", "182", "183", "185", "186",
                   "187", "188", "189", "199")
FREE_MAIL = ("163.com", "126.com", "qq.com", "sina.com")


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


def _chem(name: str, english: str, cas: str, formula: str, category: str, hazards: str, un: str | None,
          purity: str | None, package: str, unit: str, price: str) -> Chemical:
    return Chemical(name, english, cas, formula, category, tuple(hazards.split()), un, purity, package, unit, price)


CHEMICALS: tuple[Chemical, ...] = (
    _chem("乙醇", "Ethanol", "64-17-5", "C2H6O", "organic_solvent", "flammable harmful", "UN1170", "99.7", "160kg/桶", "t", "6800"),
    _chem("甲醇", "Methanol", "67-56-1", "CH4O", "organic_solvent", "flammable toxic health_hazard", "UN1230", "99.9", "槽车散装", "t", "2600"),
    _chem("丙酮", "Acetone", "67-64-1", "C3H6O", "organic_solvent", "flammable harmful", "UN1090", "99.5", "160kg/桶", "t", "5600"),
    _chem("甲苯", "Toluene", "108-88-3", "C7H8", "organic_solvent", "flammable harmful health_hazard", "UN1294", "99.5", "179kg/桶", "t", "6300"),
    _chem("二甲苯", "Xylene", "1330-20-7", "C8H10", "organic_solvent", "flammable harmful health_hazard", "UN1307", "99.0", "175kg/桶", "t", "6500"),
    _chem("乙酸乙酯", "Ethyl acetate", "141-78-6", "C4H8O2", "organic_solvent", "flammable harmful", "UN1173", "99.7", "180kg/桶", "t", "6200"),
    _chem("乙酸丁酯", "n-Butyl acetate", "123-86-4", "C6H12O2", "organic_solvent", "flammable harmful", "UN1123", "99.5", "180kg/桶", "t", "7400"),
    _chem("异丙醇", "Isopropanol", "67-63-0", "C3H8O", "organic_solvent", "flammable harmful", "UN1219", "99.9", "160kg/桶", "t", "7800"),
    _chem("正丁醇", "n-Butanol", "71-36-3", "C4H10O", "organic_solvent", "flammable harmful", "UN1120", "99.5", "165kg/桶", "t", "7900"),
    _chem("二氯甲烷", "Dichloromethane", "75-09-2", "CH2Cl2", "organic_solvent", "harmful health_hazard", "UN1593", "99.95", "270kg/桶", "t", "2700"),
    _chem("三氯甲烷", "Chloroform", "67-66-3", "CHCl3", "organic_solvent", "harmful health_hazard", "UN1888", "99.5", "300kg/桶", "t", "3000"),
    _chem("四氢呋喃", "Tetrahydrofuran", "109-99-9", "C4H8O", "organic_solvent", "flammable harmful health_hazard", "UN2056", "99.9", "180kg/桶", "kg", "16.50"),
    _chem("N,N-二甲基甲酰胺", "N,N-Dimethylformamide", "68-12-2", "C3H7NO", "organic_solvent", "flammable harmful health_hazard", "UN2265", "99.9", "190kg/桶", "t", "4800"),
    _chem("乙腈", "Acetonitrile", "75-05-8", "C2H3N", "organic_solvent", "flammable harmful", "UN1648", "99.9", "155kg/桶", "kg", "11.80"),
    _chem("环己酮", "Cyclohexanone", "108-94-1", "C6H10O", "organic_solvent", "flammable harmful", "UN1915", "99.8", "190kg/桶", "t", "8200"),
    _chem("丁酮", "Methyl ethyl ketone", "78-93-3", "C4H8O", "organic_solvent", "flammable harmful", "UN1193", "99.8", "165kg/桶", "t", "7600"),
    _chem("正己烷", "n-Hexane", "110-54-3", "C6H14", "organic_solvent", "flammable harmful health_hazard environmental", "UN1208", "99.0", "135kg/桶", "t", "7100"),
    _chem("二甲基亚砜", "Dimethyl sulfoxide", "67-68-5", "C2H6OS", "organic_solvent", "", None, "99.9", "225kg/桶", "kg", "14.50"),
    _chem("丙二醇甲醚", "Propylene glycol methyl ether", "107-98-2", "C4H10O2", "organic_solvent", "flammable", "UN3092", "99.5", "190kg/桶", "t", "9800"),
    _chem("丙二醇甲醚醋酸酯", "Propylene glycol methyl ether acetate", "108-65-6", "C6H12O3", "organic_solvent", "flammable", "UN3272", "99.5", "200kg/桶", "t", "10500"),
    _chem("甘油", "Glycerol", "56-81-5", "C3H8O3", "organic_solvent", "", None, "99.5", "250kg/桶", "kg", "7.20"),
    _chem("硫酸", "Sulfuric acid", "7664-93-9", "H2SO4", "inorganic_acid", "corrosive", "UN1830", "98.0", "槽车散装", "t", "450"),
    _chem("盐酸", "Hydrochloric acid", "7647-01-0", "HCl", "inorganic_acid", "corrosive harmful", "UN1789", "31.0", "槽车散装", "t", "260"),
    _chem("硝酸", "Nitric acid", "7697-37-2", "HNO3", "inorganic_acid", "oxidizing corrosive", "UN2031", "68.0", "35kg/桶", "t", "2500"),
    _chem("磷酸", "Phosphoric acid", "7664-38-2", "H3PO4", "inorganic_acid", "corrosive", "UN1805", "85.0", "35kg/桶", "t", "6800"),
    _chem("氢氟酸", "Hydrofluoric acid", "7664-39-3", "HF", "inorganic_acid", "toxic corrosive", "UN1790", "55.0", "25kg/桶", "kg", "9.60"),
    _chem("冰醋酸", "Acetic acid, glacial", "64-19-7", "C2H4O2", "organic_acid", "flammable corrosive", "UN2789", "99.8", "30kg/桶", "t", "3200"),
    _chem("甲酸", "Formic acid", "64-18-6", "CH2O2", "organic_acid", "flammable corrosive toxic", "UN1779", "85.0", "25kg/桶", "t", "4200"),
    _chem("柠檬酸", "Citric acid", "77-92-9", "C6H8O7", "organic_acid", "harmful", None, "99.5", "25kg/袋", "bag", "165.00"),
    _chem("草酸", "Oxalic acid", "144-62-7", "C2H2O4", "organic_acid", "harmful", None, "99.6", "25kg/袋", "kg", "5.80"),
    _chem("氢氧化钠", "Sodium hydroxide", "1310-73-2", "NaOH", "alkali", "corrosive", "UN1823", "99.0", "25kg/袋", "t", "3600"),
    _chem("氢氧化钾", "Potassium hydroxide", "1310-58-3", "KOH", "alkali", "corrosive harmful", "UN1813", "90.0", "25kg/袋", "t", "7800"),
    _chem("碳酸钠", "Sodium carbonate", "497-19-8", "Na2CO3", "alkali", "harmful", None, "99.2", "40kg/袋", "t", "1900"),
    _chem("氨水", "Ammonia solution", "1336-21-6", "NH3·H2O", "alkali", "corrosive environmental", "UN2672", "25.0", "槽车散装", "t", "900"),
    _chem("碳酸氢钠", "Sodium bicarbonate", "144-55-8", "NaHCO3", "inorganic_salt", "", None, "99.5", "25kg/袋", "t", "1800"),
    _chem("氯化钠", "Sodium chloride", "7647-14-5", "NaCl", "inorganic_salt", "", None, "99.1", "50kg/袋", "t", "450"),
    _chem("氯化钙", "Calcium chloride", "10043-52-4", "CaCl2", "inorganic_salt", "harmful", None, "94.0", "25kg/袋", "t", "1300"),
    _chem("五水硫酸铜", "Copper(II) sulfate pentahydrate", "7758-99-8", "CuSO4·5H2O", "inorganic_salt", "harmful environmental", "UN3077", "98.0", "25kg/袋", "kg", "16.80"),
    _chem("硅酸钠", "Sodium silicate", "1344-09-8", "Na2SiO3", "inorganic_salt", "harmful", None, "40.0", "槽车散装", "t", "900"),
    _chem("七水硫酸亚铁", "Iron(II) sulfate heptahydrate", "7782-63-0", "FeSO4·7H2O", "water_treatment", "harmful", None, "90.0", "25kg/袋", "t", "600"),
    _chem("三氯化铁", "Iron(III) chloride", "7705-08-0", "FeCl3", "water_treatment", "corrosive harmful", "UN1773", "96.0", "25kg/袋", "t", "3200"),
    _chem("聚合氯化铝", "Polyaluminium chloride", "1327-41-9", "[Al2(OH)nCl6-n]m", "water_treatment", "corrosive", None, "30.0", "25kg/袋", "t", "1800"),
    _chem("聚丙烯酰胺", "Polyacrylamide", "9003-05-8", "(C3H5NO)n", "water_treatment", "", None, "90.0", "25kg/袋", "kg", "11.50"),
    _chem("次氯酸钠溶液", "Sodium hypochlorite solution", "7681-52-9", "NaClO", "water_treatment", "corrosive environmental", "UN1791", "10.0", "槽车散装", "t", "750"),
    _chem("乙二胺四乙酸二钠", "Disodium EDTA dihydrate", "6381-92-6", "C10H14N2Na2O8·2H2O", "water_treatment", "harmful", None, "99.0", "25kg/袋", "kg", "14.20"),
    _chem("过氧化氢", "Hydrogen peroxide", "7722-84-1", "H2O2", "oxidizer", "oxidizing corrosive harmful", "UN2014", "27.5", "30kg/桶", "t", "1050"),
    _chem("高锰酸钾", "Potassium permanganate", "7722-64-7", "KMnO4", "oxidizer", "oxidizing harmful health_hazard environmental", "UN1490", "99.3", "50kg/桶", "kg", "18.00"),
    _chem("硝酸钾", "Potassium nitrate", "7757-79-1", "KNO3", "oxidizer", "oxidizing", "UN1486", "99.4", "25kg/袋", "t", "5200"),
    _chem("苯乙烯", "Styrene", "100-42-5", "C8H8", "monomer", "flammable harmful health_hazard", "UN2055", "99.8", "槽车散装", "t", "8600"),
    _chem("丙烯酸", "Acrylic acid", "79-10-7", "C3H4O2", "monomer", "flammable corrosive harmful environmental", "UN2218", "99.5", "200kg/桶", "t", "6500"),
    _chem("甲基丙烯酸甲酯", "Methyl methacrylate", "80-62-6", "C5H8O2", "monomer", "flammable harmful", "UN1247", "99.9", "190kg/桶", "t", "11800"),
    _chem("丙烯酸丁酯", "n-Butyl acrylate", "141-32-2", "C7H12O2", "monomer", "flammable harmful", "UN2348", "99.5", "180kg/桶", "t", "8900"),
    _chem("醋酸乙烯酯", "Vinyl acetate", "108-05-4", "C4H6O2", "monomer", "flammable health_hazard", "UN1301", "99.9", "180kg/桶", "t", "6100"),
    _chem("乙二醇", "Ethylene glycol", "107-21-1", "C2H6O2", "resin", "harmful health_hazard", None, "99.9", "230kg/桶", "t", "4300"),
    _chem("苯酚", "Phenol", "108-95-2", "C6H6O", "resin", "toxic corrosive health_hazard", "UN1671", "99.5", "200kg/桶", "t", "7900"),
    _chem("甲醛溶液", "Formaldehyde solution", "50-00-0", "CH2O", "resin", "toxic corrosive health_hazard", "UN2209", "37.0", "槽车散装", "t", "1300"),
    _chem("双酚A", "Bisphenol A", "80-05-7", "C15H16O2", "resin", "harmful health_hazard", None, "99.8", "25kg/袋", "t", "9800"),
    _chem("环氧氯丙烷", "Epichlorohydrin", "106-89-8", "C3H5ClO", "resin", "flammable toxic corrosive health_hazard", "UN2023", "99.9", "240kg/桶", "t", "9200"),
    _chem("环氧树脂E-51", "Bisphenol A epoxy resin E-51", "25068-38-6", "(C15H16O2·C3H5ClO)n", "resin", "harmful environmental", "UN3082", None, "20kg/桶", "kg", "15.80"),
    _chem("邻苯二甲酸二辛酯（DOP）", "Bis(2-ethylhexyl) phthalate", "117-81-7", "C24H38O4", "plasticizer", "health_hazard", None, "99.5", "200kg/桶", "t", "9600"),
    _chem("对苯二甲酸二辛酯（DOTP）", "Bis(2-ethylhexyl) terephthalate", "6422-86-2", "C24H38O4", "plasticizer", "", None, "99.5", "200kg/桶", "t", "9300"),
    _chem("十二烷基苯磺酸", "Dodecylbenzenesulfonic acid", "27176-87-0", "C18H30O3S", "surfactant", "corrosive harmful", "UN2586", "96.0", "200kg/桶", "t", "8200"),
    _chem("十二烷基硫酸钠", "Sodium dodecyl sulfate", "151-21-3", "C12H25NaO4S", "surfactant", "flammable harmful", "UN1325", "95.0", "25kg/袋", "kg", "13.50"),
    _chem("三乙胺", "Triethylamine", "121-44-8", "C6H15N", "amine", "flammable corrosive harmful", "UN1296", "99.5", "150kg/桶", "t", "12500"),
    _chem("吗啉", "Morpholine", "110-91-8", "C4H9NO", "amine", "flammable corrosive harmful", "UN2054", "99.5", "200kg/桶", "kg", "17.50"),
    _chem("乙醇胺", "Ethanolamine", "141-43-5", "C2H7NO", "amine", "corrosive harmful", "UN2491", "99.5", "210kg/桶", "t", "9800"),
    _chem("钛白粉（金红石型）", "Titanium dioxide, rutile", "13463-67-7", "TiO2", "pigment_filler", "", None, "94.0", "25kg/袋", "t", "15500"),
    _chem("轻质碳酸钙", "Precipitated calcium carbonate", "471-34-1", "CaCO3", "pigment_filler", "", None, "98.0", "25kg/袋", "t", "900"),
    _chem("氧化锌", "Zinc oxide", "1314-13-2", "ZnO", "pigment_filler", "environmental", "UN3077", "99.7", "25kg/袋", "t", "21000"),
    _chem("炭黑N330", "Carbon black N330", "1333-86-4", "C", "pigment_filler", "", None, None, "20kg/袋", "t", "8800"),
    _chem("液氯", "Chlorine, liquefied", "7782-50-5", "Cl2", "gas", "compressed_gas oxidizing toxic environmental", "UN1017", "99.6", "1000kg/钢瓶", "cylinder", "600.00"),
    _chem("液氨", "Ammonia, anhydrous", "7664-41-7", "NH3", "gas", "compressed_gas flammable toxic corrosive environmental", "UN1005", "99.8", "槽车散装", "t", "3100"),
    _chem("液体二氧化碳", "Carbon dioxide, refrigerated liquid", "124-38-9", "CO2", "gas", "compressed_gas", "UN2187", "99.9", "槽车散装", "t", "600"),
)
CATEGORY_CODES = {
    "organic_solvent": "SOL", "inorganic_acid": "ACD", "organic_acid": "OAC", "alkali": "ALK",
    "inorganic_salt": "SLT", "water_treatment": "WTA", "oxidizer": "OXD", "monomer": "MON", "resin": "RES",
    "plasticizer": "PLS", "surfactant": "SUR", "amine": "AMN", "pigment_filler": "PIG", "gas": "GAS",
}
IMPURITY_NOTES = ("水分 ≤ 0.10%；色度 ≤ 10 Hazen", "灼烧残渣 ≤ 0.01%；铁 ≤ 5 ppm", "不挥发物 ≤ 0.005%",
                  "氯化物 ≤ 10 ppm；重金属（以 Pb 计）≤ 5 ppm", "酸度（以乙酸计）≤ 0.003%")
PROCESS_NOTES = ("储存于阴凉通风的库房，远离火种与热源；灌装前氮气保护。",
                 "长协供应商直供，入库前逐批检测含量、水分和色度。",
                 "槽车到厂后取样复检，合格后方可卸料入罐。",
                 "与酸类、氧化剂分库存放；搬运时轻装轻卸，防止包装破损。",
                 "分装车间需开启局部排风；操作人员佩戴防护面罩和耐酸碱手套。",
                 "按客户要求可提供定制包装；每批随货附 COA。")

CUSTOMER_NOTES = ("该客户要求每批随货提供 COA 和 SDS。", "仅接受 IBC 吨桶包装，卸货需提前一天预约。",
                  "财务对账周期为每月 25 日，发票需当月开具。", "厂区限高 4.2 米，需安排 9.6 米以下车辆。",
                  "采购由集团统一招标，年度框架协议每年 12 月续签。", "危化品车辆须在园区指定时间段入园。",
                  "对价格较敏感，报价前需与销售经理确认底价。")
ORDER_NOTES = ("随货附 COA 和 SDS", "危险品专车运输，需押运员", "客户自提", "分两批发货",
               "请用新桶包装", "送货前一天电话联系仓库", "加急订单，优先排产")

FOLLOW_UP_SUBJECTS = ("季度例行拜访", "报价跟进", "样品试用反馈", "回款沟通", "新项目需求洽谈",
                      "年度框架合同续签", "危化品资质复核", "交货期确认", "新产品推介", "质量问题回访")
FOLLOW_UP_DETAILS = {
    "phone": ("电话联系{contact}，客户下月预计需要{product}约 {qty} 吨，已报当月价格。",
              "与{contact}电话确认{product}的交货时间，客户希望提前 3 天到货。",
              "电话沟通上月货款，{contact}表示本周内安排付款。"),
    "visit": ("上门拜访{contact}，参观其新建生产线，了解到{product}年用量约 {qty} 吨。",
              "携技术人员到厂拜访，现场解答{product}使用中的工艺问题。",
              "拜访采购部{contact}，沟通明年{product}的年度采购框架。"),
    "wechat": ("微信发送{product}最新报价单和 SDS，{contact}表示会内部评估。",
               "{contact}微信询问{product}的库存情况，已回复现货 {qty} 吨。",
               "微信发送{product}的检测报告，客户确认收到。"),
    "email": ("邮件回复{contact}索取{product} COA 的请求，已附最近三批报告。",
              "邮件发送{product}年度合同草案，等待客户法务审核。",
              "邮件通知{product}价格调整，新价格下月 1 日起执行。"),
}
FEEDBACK_TEXTS = {  # type -> ((subject, content), ...)
    "complaint": (("到货延迟", "订单{order}的{product}比约定日期晚到 3 天，影响了客户排产。"),
                  ("包装破损", "订单{order}到货时有 2 个包装破损，{product}有少量泄漏。"),
                  ("含量不达标", "客户抽检{product}含量低于合同要求，要求退换货。"),
                  ("COA 与实物不符", "订单{order}随货 COA 批号与桶上标签不一致。"),
                  ("运输单据不全", "危化品运输随车缺少 SDS，客户仓库拒收。")),
    "suggestion": (("希望提供吨桶包装", "客户建议{product}增加 IBC 吨桶包装，减少开桶次数。"),
                   ("缩短交货周期", "客户希望{product}常备安全库存，交货周期缩短到一周内。"),
                   ("增加电子版 COA", "建议每批{product}发货时同步邮件发送电子版 COA。"),
                   ("开通线上对账", "客户财务建议每月提供电子对账单，便于核对发票和回款。")),
    "praise": (("交货及时", "客户表扬订单{order}提前到货，解决了其紧急生产需求。"),
               ("技术支持专业", "客户感谢技术人员现场指导{product}的使用，问题已解决。"),
               ("产品质量稳定", "客户反馈近一年{product}各批次质量稳定，将增加采购量。")),
}
RESOLUTIONS = {
    "complaint": ("已补发货物并承担运费，客户确认接受。", "已安排退换货，并对仓库发货流程进行整改。",
                  "已派质量工程师到厂复检，确认为取样问题，客户认可。"),
    "suggestion": ("已纳入下季度改进计划并回复客户。", "已与物流部门协调落实，客户满意。"),
    "praise": ("已转达相关部门并通报表扬。",),
}
SATISFACTION = {"complaint": (1, 2, 3), "suggestion": (3, 4), "praise": (4, 5)}
TERM_DAYS = {"prepayment": 0, "cash_on_delivery": 3, "net_30": 30, "net_60": 60, "net_90": 90,
             "acceptance_bill": 30, "letter_of_credit": 60}
GRADE_ORDER_WEIGHT = {"A": 6.0, "B": 3.0, "C": 1.5, "D": 0.7}
STATUS_ORDER_WEIGHT = {"prospect": 0.0, "negotiating": 0.0, "active": 1.0, "dormant": 0.3, "lost": 0.15}
STATUS_FOLLOW_UP_WEIGHT = {"prospect": 1.0, "negotiating": 2.0, "active": 1.5, "dormant": 0.5, "lost": 0.3}
OUR_TAX_REGION = "32"   # the demo company itself is registered in Jiangsu

# -- small helpers ---------------------------------------------------------------------------


def scaled(base: int, scale: float) -> int:
    """Return `base` rows scaled by `scale`, at least 1."""
    return max(1, round(base * scale))


def pick(rng: random.Random, keys: Sequence[str], weights: Mapping[str, float] | None = None) -> str | None:
    """Return one of `keys`, weighted by `weights` (missing keys weigh 1); None if there are no keys."""
    if not keys:
        return None
    if weights:
        w = [weights.get(k, 1.0) for k in keys]
        if sum(w) > 0:
            return rng.choices(keys, w)[0]
    return rng.choice(keys)


def pick_some(rng: random.Random, keys: Sequence[str], most: int) -> list[str]:
    """Return 0..`most` distinct keys, in the order the schema lists them."""
    chosen = set(rng.sample(list(keys), min(len(keys), rng.randint(0, most))))
    return [k for k in keys if k in chosen]


def state(keys: Sequence[str], wanted: str) -> str | None:
    """Return `wanted` if the schema still has that option, else its first option."""
    if wanted in keys:
        return wanted
    return keys[0] if keys else None


def day_between(rng: random.Random, start: datetime.date, end: datetime.date) -> datetime.date:
    """Return a random date from `start` to `end`, both included."""
    return start + datetime.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def plus_days(day: datetime.date, days: int, cap: datetime.date | None = None) -> datetime.date:
    """Return `day` + `days`, no later than `cap`."""
    result = day + datetime.timedelta(days=days)
    return min(result, cap) if cap else result


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def person_name(rng: random.Random) -> tuple[str, str]:
    """Return a Chinese name and its pinyin for e-mail addresses, e.g. ('王建华', 'jianhua.wang')."""
    surname, s_py = rng.choice(SURNAMES)
    given = rng.sample(GIVEN_NAMES, rng.choice((1, 2, 2)))
    return surname + "".join(g for g, _ in given), "".join(p for _, p in given) + "." + s_py


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def landline(rng: random.Random, area_code: str) -> str:
    """Return a landline number: 8 digits after a 3-digit area code, 7 after a 4-digit one."""
    digits = 8 if len(area_code) == 3 else 7
    return f"{area_code}-{rng.randint(2, 8)}{rng.randint(0, 10 ** (digits - 1) - 1):0{digits - 1}d}"


def org_code_check(body: str) -> str:
    """Return the check character of an 8-character organisation code (GB 11714)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc(rng: random.Random, gb_code: str) -> str:
    """Return a unified social credit code of an enterprise registered in the province `gb_code`."""
    area = gb_code + f"{rng.randint(1, 12):02d}" + rng.choice(("02", "03", "05", "06", "11", "12", "81"))
    if rng.random() < 0.6:   # codes issued since 2015 start with MA
        body = "MA" + "".join(rng.choice(USCC_CHARS) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = "91" + area + body + org_code_check(body)
    return first17 + uscc_check_char(first17)


# -- the generator ---------------------------------------------------------------------------


@dataclass
class DemoBuilder:
    """Holds the random source, the schema's options and the rows made so far."""

    schema: SchemaSpec
    users: list[int]
    rng: random.Random
    scale: float
    rows: dict[str, list[Row]] = field(default_factory=dict)
    contacts_of: list[list[int]] = field(default_factory=list)      # per customer: contact indexes
    orders_of: list[list[int]] = field(default_factory=list)        # per customer: order indexes
    favourites: list[list[int]] = field(default_factory=list)       # per customer: product indexes
    lines_of: list[list[int]] = field(default_factory=list)         # per order: product indexes

    def options(self, table: str, field_key: str) -> tuple[str, ...]:
        """Return the option keys of a choice field, or () if the schema lacks it."""
        try:
            spec = self.schema.table(table).field(field_key)
        except KeyError:
            return ()
        return spec.choices.keys if spec.choices else ()

    def label(self, table: str, field_key: str, key: str) -> str:
        """Return the Chinese label of an option, or the key itself."""
        spec = self.schema.table(table).field(field_key)
        option = spec.choices.option(key) if spec.choices else None
        return option.label.zh if option else key

    def user(self) -> int | None:
        return self.rng.choice(self.users) if self.users else None

    # -- customers -------------------------------------------------------------------------

    def customers(self) -> None:
        provinces = [k for k in self.options("customer", "province") if k in PROVINCES]
        weights = {k: PROVINCES[k].weight for k in provinces}
        names: set[str] = set()
        codes: set[str] = set()
        rows = []
        for _ in range(scaled(300, self.scale)):
            province = pick(self.rng, provinces, weights)
            rows.append(self.customer(province, names, codes))
        self.rows["customer"] = rows

    def customer(self, province: str | None, names: set[str], codes: set[str]) -> Row:
        rng = self.rng
        prov = PROVINCES[province] if province else PROVINCES["jiangsu"]
        city, area_code = rng.choice(prov.cities)
        kind, industry = rng.choice(BUSINESS_KINDS)
        brand, brand_py = rng.choice(BRANDS)
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
            "address": f"{province_label}{city}{rng.choice(ROADS)}{rng.randint(1, 399)}号",
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
            "notes": rng.choice(CUSTOMER_NOTES) if rng.random() < 0.3 else None,
        }

    def company_name(self, prov: Province, city: str, kind: str, brand: str, taken: set[str]) -> tuple[str, str]:
        """Return a company name not yet in `taken` (and add it), plus a short name."""
        place = prov.short if city.endswith("区") or self.rng.random() < 0.4 else city.removesuffix("市")
        name = f"{place}{brand}{kind}{self.rng.choice(COMPANY_SUFFIXES)}"
        for _ in range(30):
            if name not in taken:
                break
            brand = self.rng.choice(BRANDS)[0]
            name = f"{place}{brand}{kind}{self.rng.choice(COMPANY_SUFFIXES)}"
        else:   # only at very large scales: number the company to keep names unique
            name = f"{place}{brand}{kind}{len(taken) + 1}号有限公司"
        taken.add(name)
        return name, place + brand

    def payment_terms(self, grade: str | None) -> str | None:
        weights = {"A": {"net_60": 4, "net_90": 3, "acceptance_bill": 3, "net_30": 2},
                   "B": {"net_30": 5, "net_60": 3, "acceptance_bill": 2, "cash_on_delivery": 1},
                   "C": {"net_30": 3, "cash_on_delivery": 3, "prepayment": 3, "acceptance_bill": 1},
                   "D": {"prepayment": 6, "cash_on_delivery": 3}}.get(grade or "", {})
        keys = self.options("customer", "payment_terms")
        return pick(self.rng, keys, {k: weights.get(k, 0.1) for k in keys})

    def credit_limit(self, grade: str | None) -> Decimal:
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

    # -- contacts --------------------------------------------------------------------------

    def contacts(self) -> None:
        rows: list[Row] = []
        customers = self.rows["customer"]
        self.contacts_of = [[] for _ in customers]
        for c_index, customer in enumerate(customers):
            domain = (customer["website"] or "").removeprefix("https://www.")
            for n in range(self.rng.choices((1, 2, 3, 4, 5), (20, 30, 25, 15, 10))[0]):
                self.contacts_of[c_index].append(len(rows))
                rows.append(self.contact(c_index, domain, primary=n == 0))
        self.rows["contact"] = rows

    def contact(self, customer: int, domain: str, primary: bool) -> Row:
        rng = self.rng
        name, name_py = person_name(rng)
        title, department = rng.choice(JOB_TITLES)
        phone = mobile(rng)
        email = f"{name_py}@{domain or rng.choice(FREE_MAIL)}" if rng.random() < 0.8 else None
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

    # -- products --------------------------------------------------------------------------

    def products(self) -> None:
        count = min(len(CHEMICALS), max(3, round(60 * self.scale)))
        chosen = sorted(self.rng.sample(range(len(CHEMICALS)), count))
        seq: dict[str, int] = {}
        rows = []
        for i in chosen:
            chem = CHEMICALS[i]
            prefix = CATEGORY_CODES.get(chem.category, "GEN")
            seq[prefix] = seq.get(prefix, 0) + 1
            rows.append(self.product(chem, f"{prefix}-{seq[prefix]:03d}"))
        self.rows["product"] = rows
        self.favourites = [self.rng.sample(range(len(rows)), min(len(rows), self.rng.randint(3, 8)))
                           for _ in self.rows["customer"]]

    def product(self, chem: Chemical, code: str) -> Row:
        rng = self.rng
        hazards = self.options("product", "ghs_hazards")
        purity = Decimal(chem.purity) if chem.purity else None
        formula = f"分子式：{chem.formula}\n主含量：≥ {chem.purity}%\n{rng.choice(IMPURITY_NOTES)}" \
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
            "process_notes": rng.choice(PROCESS_NOTES) if rng.random() < 0.5 else None,
            "sds": None,
            "sds_revision_date": day_between(rng, datetime.date(2020, 6, 1), datetime.date(2025, 10, 31)),
        }

    # -- orders and lines ------------------------------------------------------------------

    def customer_weights(self, by_status: Mapping[str, float]) -> list[float]:
        """Return a weight per customer from its grade and status (for picking who buys or is visited)."""
        return [GRADE_ORDER_WEIGHT.get(c["grade"], 1.0) * by_status.get(c["status"], 0.5)
                for c in self.rows["customer"]]

    def orders(self) -> None:
        customers = self.rows["customer"]
        weights = self.customer_weights(STATUS_ORDER_WEIGHT)
        if sum(weights) == 0:
            weights = [1.0] * len(customers)
        count = scaled(3000, self.scale)
        dates = sorted(day_between(self.rng, DEMO_START, DEMO_END) for _ in range(count))
        buyers = self.rng.choices(range(len(customers)), weights, k=count)
        self.orders_of = [[] for _ in customers]
        self.rows["order"], self.rows["order_line"], self.lines_of = [], [], []
        for number, (day, customer) in enumerate(zip(dates, buyers, strict=True), start=1):
            self.orders_of[customer].append(len(self.rows["order"]))
            self.rows["order"].append(self.order(number, day, customer))

    def order(self, number: int, day: datetime.date, customer: int) -> Row:
        rng = self.rng
        buyer = self.rows["customer"][customer]
        currency = pick(rng, self.options("order", "currency"), {"CNY": 92, "USD": 6, "EUR": 2})
        contacts = self.contacts_of[customer]
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
            "notes": rng.choice(ORDER_NOTES) if rng.random() < 0.2 else None,
        }
        row["total"] = self.order_lines(len(self.rows["order"]), row, customer)
        return row

    def order_status(self, day: datetime.date) -> str | None:
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
        favourites = self.favourites[customer]
        pool = favourites if rng.random() < 0.7 and len(favourites) >= count else range(len(products))
        chosen = rng.sample(list(pool), count)
        self.lines_of.append(chosen)
        batch = row["status"] in ("shipped", "completed")
        total = Decimal(0)
        for product in chosen:
            line = self.order_line(order, product, row["currency"], row["order_date"] if batch else None)
            total += line["amount"]
            self.rows["order_line"].append(line)
        return total

    def order_line(self, order: int, product: int, currency: str | None, shipped: datetime.date | None) -> Row:
        rng = self.rng
        item = self.rows["product"][product]
        unit = item["unit"]
        quantity = self.quantity(unit)
        price = item["unit_price"] * Decimal(rng.uniform(0.92, 1.08)) / FX_RATES.get(currency or "CNY", Decimal(1))
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

    # -- invoices and receivables ----------------------------------------------------------

    def invoices_and_payments(self) -> None:
        self.rows["invoice"], self.rows["payment"] = [], []
        billable = ("shipped", "completed")
        for index, order in enumerate(self.rows["order"]):
            if order["status"] in billable and order["total"] > 0 and self.rng.random() < 0.9:
                invoice = self.invoice(index, order)
                self.rows["invoice"].append(invoice)
                if invoice["status"] not in ("void", "red_reversed"):
                    self.rows["payment"].append(self.payment(len(self.rows["invoice"]) - 1, invoice))

    def invoice(self, order_index: int, order: Row) -> Row:
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
        rate = FX_RATES.get(order["currency"] or "CNY", Decimal(1))
        note = f"外币订单，按汇率 {rate} 折算为人民币开票。" if rate != 1 else None
        return {
            "number": f"{issued:%y}{OUR_TAX_REGION}2{number:015d}",
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
        rng = self.rng
        customer = self.rows["customer"][invoice["customer"]]
        terms = customer["payment_terms"] or "net_30"
        due = plus_days(invoice["issue_date"], TERM_DAYS.get(terms, 30))
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

    # -- feedback and follow-ups -----------------------------------------------------------

    def feedback(self) -> None:
        weights = self.customer_weights(STATUS_ORDER_WEIGHT)
        if sum(weights) == 0:
            weights = [1.0] * len(weights)
        customers = self.rng.choices(range(len(weights)), weights, k=scaled(350, self.scale))
        rows = [self.feedback_row(c) for c in customers]
        self.rows["feedback"] = sorted(rows, key=lambda r: r["feedback_date"])

    def feedback_row(self, customer: int) -> Row:
        rng = self.rng
        orders = self.orders_of[customer]
        order = rng.choice(orders) if orders and rng.random() < 0.7 else None
        product: int | None
        if order is not None:
            day = plus_days(self.rows["order"][order]["order_date"], rng.randint(5, 40), cap=DEMO_END)
            product = rng.choice(self.lines_of[order])
        else:
            day = day_between(rng, DEMO_START, DEMO_END)
            product = rng.choice(self.favourites[customer]) if rng.random() < 0.5 else None
        kind = pick(rng, self.options("feedback", "type"), {"complaint": 35, "suggestion": 35, "praise": 30})
        subject, content = rng.choice(FEEDBACK_TEXTS.get(kind or "", FEEDBACK_TEXTS["suggestion"]))
        status = self.feedback_status(day)
        product_name = self.rows["product"][product]["name"] if product is not None else "产品"
        order_no = self.rows["order"][order]["number"] if order is not None else ""
        contacts = self.contacts_of[customer]
        return {
            "customer": customer,
            "contact": rng.choice(contacts) if contacts and rng.random() < 0.8 else None,
            "order": order,
            "product": product,
            "feedback_date": day,
            "type": kind,
            "satisfaction": rng.choice(SATISFACTION.get(kind or "", (3,))) if rng.random() < 0.9 else None,
            "subject": subject,
            "content": content.format(product=product_name, order=order_no),
            "status": status,
            "handler": self.user() if status != "new" else None,
            "resolution": rng.choice(RESOLUTIONS.get(kind or "", ("已处理。",)))
            if status in ("resolved", "closed") else None,
        }

    def feedback_status(self, day: datetime.date) -> str | None:
        age = (DEMO_END - day).days
        weights = ({"closed": 60, "resolved": 38, "processing": 2} if age > 45
                   else {"new": 35, "processing": 40, "resolved": 25})
        keys = self.options("feedback", "status")
        return pick(self.rng, keys, {k: weights.get(k, 0) for k in keys})

    def follow_ups(self) -> None:
        weights = self.customer_weights(STATUS_FOLLOW_UP_WEIGHT)
        customers = self.rng.choices(range(len(weights)), weights, k=scaled(1500, self.scale))
        rows = [self.follow_up(c) for c in customers]
        self.rows["follow_up"] = sorted(rows, key=lambda r: r["visit_date"])

    def follow_up(self, customer: int) -> Row:
        rng = self.rng
        channel = pick(rng, self.options("follow_up", "channel"),
                       {"phone": 40, "visit": 20, "wechat": 30, "email": 10})
        contacts = self.contacts_of[customer]
        contact = rng.choice(contacts) if contacts and rng.random() < 0.9 else None
        contact_name = self.rows["contact"][contact]["name"] if contact is not None else "客户"
        product = self.rows["product"][rng.choice(self.favourites[customer])]["name"]
        detail = rng.choice(FOLLOW_UP_DETAILS.get(channel or "", FOLLOW_UP_DETAILS["phone"]))
        day = day_between(rng, DEMO_START, DEMO_END)
        owner = self.rows["customer"][customer]["owner"]
        return {
            "customer": customer,
            "contact": contact,
            "visit_date": day,
            "channel": channel,
            "subject": rng.choice(FOLLOW_UP_SUBJECTS),
            "content": detail.format(contact=contact_name, product=product, qty=rng.randint(5, 200)),
            "next_date": plus_days(day, rng.randint(7, 45)) if rng.random() < 0.7 else None,
            "owner": owner if owner is not None and rng.random() < 0.8 else self.user(),
        }


GENERATION_ORDER = ("customer", "contact", "product", "order", "order_line", "invoice", "payment",
                    "feedback", "follow_up")


def build_demo_rows(schema: SchemaSpec, user_ids: list[int], seed: int = 2024,
                    scale: float = 1.0) -> dict[str, list[dict]]:
    """Return demo rows per table of the default schema, parents before children.

    Link values are 0-based indexes into the target table's list; user values come from
    `user_ids` (None if it is empty). An empty multi-choice is None, as `validate_value` gives it.
    Fields the schema lacks are dropped; tables it lacks are left out.
    """
    builder = DemoBuilder(schema, list(user_ids), random.Random(seed), scale)
    builder.customers()
    builder.contacts()
    builder.products()
    builder.orders()
    builder.invoices_and_payments()
    builder.feedback()
    builder.follow_ups()
    result: dict[str, list[dict]] = {}
    for key in GENERATION_ORDER:
        try:
            table = schema.table(key)
        except KeyError:
            continue
        keys = [f.key for f in table.fields]
        result[key] = [{k: None if row[k] == [] else row[k] for k in keys if k in row}
                       for row in builder.rows[key]]
    return result


__all__ = ["build_demo_rows", "CHEMICALS", "PROVINCES", "DEMO_START", "DEMO_END"]
