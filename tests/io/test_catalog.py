"""Catalogue and promotions files (CSV, JSONL, gzip), the items of POST /v1/catalog, and how
a catalogue given by files combines with a bundle's."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from copilot.catalog import Catalog, Product, Promotion
from copilot.errors import InputError
from copilot.io.catalog import (
    combine,
    parse_products,
    parse_promotions,
    read_catalog,
    read_promotions,
    split_columns,
)

PRODUCTS_CSV = (
    "name,category,price,attributes\n"
    "双面羊绒大衣,大衣,¥1299,尺码:S/M/L;颜色:驼色/黑色\n"
    "真丝衬衫,衬衫,499元,面料：真丝；尺码：S/M\n"
    "帆布包,,,\n"
    '羊毛围巾,配饰,"1,099.50",颜色:灰;\n'
)
PROMOTIONS_CSV = (
    "title,kind,detail,starts,ends,products\n"
    "满300减50,coupon,全店满300减50,2026-03-01,2026-03-31,\n"
    "大衣包邮,包邮,大衣全国包邮,2026-03-01,,双面羊绒大衣；真丝衬衫\n"
    "会员日,,,,,\n"
)


def _file(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


# --------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("gz", [False, True])
def test_read_catalog_csv_parses_prices_and_attributes(tmp_path: Path, gz: bool) -> None:
    name = "products.csv.gz" if gz else "products.csv"
    products, bad = read_catalog(_file(tmp_path / name, PRODUCTS_CSV, gz))
    assert bad == []
    assert products == [
        Product("双面羊绒大衣", "大衣", 1299.0, {"尺码": "S/M/L", "颜色": "驼色/黑色"}),
        Product("真丝衬衫", "衬衫", 499.0, {"面料": "真丝", "尺码": "S/M"}),
        Product("帆布包", "", None, {}),
        Product("羊毛围巾", "配饰", 1099.5, {"颜色": "灰"}),
    ]


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        (",大衣,10,", ["line 3:", "name: field is required"]),
        ("大衣A,大衣,abc,", ["line 3 (product '大衣A')", "price: 'abc' is not a number", "¥1299"]),
        ("大衣A,大衣,-5,", ["price: '-5' is negative", "non-negative"]),
        ("大衣A,大衣,inf,", ["price: 'inf' is not a finite number"]),
        ("大衣A,大衣,10,尺码S/M", ["attributes: '尺码S/M' has no ':'", "key:value;key:value"]),
        ("大衣A,大衣,10,尺码:", ["attributes: '尺码:' has an empty value"]),
        ("大衣A,大衣,10,:S", ["attributes: ':S' has an empty key"]),
        ("大衣A,大衣,10,尺码:S;尺码:M", ["the key '尺码' is given twice", "尺码:S/M/L"]),
        ("好大衣,大衣,10,,surplus", ["the row has 5 fields but the header has 4"]),
        ("双面羊绒大衣,大衣,1,", ["name: '双面羊绒大衣' is already on line 2", "variants"]),
        ("大衣A," + "长" * 201 + ",1,", ["category: 201 characters", "at most 200"]),
    ],
)
def test_read_catalog_quarantines_bad_rows_with_field_value_and_what_is_valid(
    tmp_path: Path, row: str, fragments: list[str]
) -> None:
    text = f"name,category,price,attributes\n双面羊绒大衣,大衣,1299,\n{row}\n真丝衬衫,衬衫,499,\n"
    products, bad = read_catalog(_file(tmp_path / "p.csv", text))
    assert [p.name for p in products] == ["双面羊绒大衣", "真丝衬衫"]
    assert len(bad) == 1 and bad[0].line == 3
    for fragment in fragments:
        assert fragment in bad[0].error, (fragment, bad[0].error)
    assert isinstance(bad[0].raw, dict)


def test_read_catalog_jsonl_takes_objects_and_numbers(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "products.jsonl",
        [
            {
                "name": "双面羊绒大衣",
                "price": 1299,
                "attributes": {"尺码": ["S", "M"], "克重": 800},
            },
            {"Name": 10086, "Category": "编号商品", "price": "￥ 9.9", "extra": "ignored"},
            {"name": "坏", "attributes": {"尺码": {"S": 1}}},
            {"name": "坏2", "price": True},
            "not an object",
            {"name": ["a"]},
        ],
    )
    products, bad = read_catalog(path)
    assert products == [
        Product("双面羊绒大衣", "", 1299.0, {"尺码": "S/M", "克重": "800"}),
        Product("10086", "编号商品", 9.9, {}),
    ]
    assert [q.line for q in bad] == [3, 4, 5, 6]
    assert "the value of '尺码' is an object" in bad[0].error
    assert "price: expected a non-negative number" in bad[1].error and "a boolean" in bad[1].error
    assert "expected a JSON object (one product), got a string" in bad[2].error
    assert "name: expected text, got an array" in bad[3].error


def test_read_catalog_renames_columns(tmp_path: Path) -> None:
    path = _file(tmp_path / "商品.csv", "商品名称,类目,售价\n大衣,外套,399\n")
    products, bad = read_catalog(
        path, columns={"商品名称": "name", "类目": "category", "售价": "price"}
    )
    assert bad == [] and products == [Product("大衣", "外套", 399.0, {})]


@pytest.mark.parametrize(
    ("header", "columns", "fragments"),
    [
        (
            "商品名称,price",
            None,
            [
                "catalogue file",
                "lacks the column 'name'",
                "found columns: '商品名称', 'price'",
                "expected columns: name (required), category, price, attributes",
                "--catalog-column 'SOURCE=name'",
            ],
        ),
        ("name,title", {"title": "name"}, ["columns 'name' and 'title' both map to 'name'"]),
        ("name", {"x": "kind"}, ["'kind' is not a product column", "valid columns: name"]),
    ],
)
def test_read_catalog_refuses_a_file_it_cannot_use(
    tmp_path: Path, header: str, columns: dict[str, str] | None, fragments: list[str]
) -> None:
    path = _file(tmp_path / "products.csv", f"{header}\nx,y\n")
    with pytest.raises(InputError) as info:
        read_catalog(path, columns=columns)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_read_catalog_of_a_missing_file() -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_catalog("/nonexistent/products.csv")


# --------------------------------------------------------------------------- promotions


@pytest.mark.parametrize("gz", [False, True])
def test_read_promotions_csv(tmp_path: Path, gz: bool) -> None:
    name = "promotions.csv.gz" if gz else "promotions.csv"
    promotions, bad = read_promotions(_file(tmp_path / name, PROMOTIONS_CSV, gz))
    assert bad == []
    assert promotions == [
        Promotion("满300减50", "coupon", "全店满300减50", date(2026, 3, 1), date(2026, 3, 31)),
        Promotion(
            "大衣包邮",
            "free_shipping",
            "大衣全国包邮",
            date(2026, 3, 1),
            None,
            ("双面羊绒大衣", "真丝衬衫"),
        ),
        Promotion("会员日", "other"),
    ]


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        (",coupon,,,,", ["title: field is required"]),
        (
            "A,voucher,,,,",
            [
                "line 3 (promotion 'A')",
                "kind: unknown promotion kind 'voucher'",
                "coupon, discount, gift, free_shipping, other",
            ],
        ),
        ("A,,,2026/03/01,,", ["starts: '2026/03/01' is not an ISO day", "YYYY-MM-DD"]),
        ("A,,,,tomorrow,", ["ends: 'tomorrow' is not an ISO day"]),
        ("A,,,2026-03-10,2026-03-01,", ["ends: 2026-03-01 is before starts 2026-03-10"]),
        ("满300减50,gift,,,,", ["title: '满300减50' is already on line 2"]),
    ],
)
def test_read_promotions_quarantines_bad_rows(
    tmp_path: Path, row: str, fragments: list[str]
) -> None:
    text = f"title,kind,detail,starts,ends,products\n满300减50,coupon,,,,\n{row}\n"
    promotions, bad = read_promotions(_file(tmp_path / "p.csv", text))
    assert [p.title for p in promotions] == ["满300减50"]
    assert len(bad) == 1 and bad[0].line == 3
    for fragment in fragments:
        assert fragment in bad[0].error, (fragment, bad[0].error)


def test_read_promotions_jsonl_with_lists_and_datetimes(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "promotions.jsonl",
        [
            {"title": "赠围巾", "kind": "赠品", "products": ["大衣", "大衣", 10086]},
            {"title": "限时", "kind": "DISCOUNT", "ends": "2026-03-08T23:59:59+08:00"},
            {"title": "坏", "products": {"大衣": 1}},
        ],
    )
    promotions, bad = read_promotions(path)
    assert promotions == [
        Promotion("赠围巾", "gift", products=("大衣", "10086")),
        Promotion("限时", "discount", ends=date(2026, 3, 8)),
    ]
    assert len(bad) == 1 and "products: expected product names separated by ';'" in bad[0].error


def test_read_promotions_names_its_required_column(tmp_path: Path) -> None:
    path = _file(tmp_path / "promotions.csv", "name,kind\nA,coupon\n")
    with pytest.raises(
        InputError,
        match="promotions file .* lacks the column 'title'.*expected columns: title \\(required\\), kind",
    ):
        read_promotions(path)


# --------------------------------------------------------------------------- API items, combine


def test_parse_items_rejects_each_bad_item_with_its_position() -> None:
    products, rejected = parse_products(
        [
            {"name": "大衣", "price": "¥399", "attributes": "尺码:S/M"},
            {"name": "衬衫", "prize": 1},
            "大衣",
            {"name": "大衣", "price": 1},
            {"name": " ", "price": 1},
        ]
    )
    assert products == [Product("大衣", "", 399.0, {"尺码": "S/M"})]
    assert [r.index for r in rejected] == [1, 2, 3, 4]
    assert "products[1] (product '衬衫'): unknown field 'prize'" in rejected[0].error
    assert "name (required), category, price, attributes" in rejected[0].error
    assert "products[2]: expected an object" in rejected[1].error
    assert "name: '大衣' is already products[0]" in rejected[2].error
    assert "name: field is required" in rejected[3].error
    promotions, bad = parse_promotions(
        [{"title": "A", "kind": "coupon"}, {"title": "B", "ends": 5}]
    )
    assert promotions == [Promotion("A", "coupon")]
    assert "promotions[1] (promotion 'B'): ends: 5 is not an ISO day" in bad[0].error


def test_combine_replaces_only_the_parts_given_and_keeps_the_terms() -> None:
    base = Catalog([Product("旧大衣")], [Promotion("旧活动")], terms=["大衣", "面膜"])
    new = combine(base, [Product("新大衣", "大衣")])
    assert list(new.products) == ["新大衣"] and [p.title for p in new.promotions] == ["旧活动"]
    assert new.terms == ["大衣", "面膜"]
    only_promotions = combine(base, promotions=[Promotion("新活动")])
    assert list(only_promotions.products) == ["旧大衣"]
    assert [p.title for p in only_promotions.promotions] == ["新活动"]
    assert list(combine(None, [Product("x")]).products) == ["x"]


def test_split_columns_sends_each_target_to_its_file() -> None:
    assert split_columns({"商品": "name", "活动": "title"}) == ({"商品": "name"}, {"活动": "title"})
    assert split_columns(None) == (None, None)
    with pytest.raises(InputError, match="'sku' is not a column of the catalogue"):
        split_columns({"编号": "sku"})
