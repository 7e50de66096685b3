"""Charset fallback chain, the same for encoded words in headers and for bodies: the declared charset's
superset (GB2312→GB18030, ISO-8859-1→Windows-1252, KS_C_5601→CP949, Shift_JIS→CP932…), then UTF-8, then
detection. Table-driven over several charsets; each text cannot be read in the charset it declares."""

# ruff: noqa: RUF001  (mail in other scripts: Cyrillic letters, full-width colons and dashes are meant)

from __future__ import annotations

import base64
import quopri

import pytest

from mailtickets.parse import parse_message
from mailtickets.parse.charsets import decode_bytes, decode_encoded_words, known_charset

# (what it is, declared label, the codec the client really wrote, the text)
OVERSTEPPED = [
    ("GB2312 declared, GBK written", "gb2312", "gbk", "朱镕基的打印机"),
    ("GBK declared, GB18030 written", "gbk", "gb18030", "打印机 €"),
    ("ISO-8859-1 declared, Windows-1252 written", "iso-8859-1", "cp1252", "“Drucker” – 5 €"),
    ("US-ASCII declared, UTF-8 written", "us-ascii", "utf-8", "Grüße aus München"),
    ("KS_C_5601-1987 declared, CP949 written", "ks_c_5601-1987", "cp949", "똠방각하 프린터"),
    ("EUC-KR declared, CP949 written", "euc-kr", "cp949", "똠 프린터"),
    ("Shift_JIS declared, CP932 written", "shift_jis", "cp932", "①番のプリンター"),
    ("Big5 declared, Big5-HKSCS written", "big5", "big5hkscs", "嘅打印機"),
    ("ISO-2022-JP declared, half-width katakana written", "iso-2022-jp", "iso2022_jp_ext", "ﾌﾟﾘﾝﾀｰ"),
    ("ISO-8859-9 declared, Windows-1254 written", "iso-8859-9", "cp1254", "“Yazıcı” €"),
    ("unknown label, UTF-8 written", "x-unknown-charset", "utf-8", "Принтер не печатает"),
    ("label with an RFC 2231 language", "utf-8*de", "utf-8", "Drucker kaputt"),
    ("label Python lacks (x-sjis)", "x-sjis", "cp932", "プリンター①"),
    ("label Python lacks (windows-874)", "windows-874", "cp874", "เครื่องพิมพ์"),
    ("KOI8-R as declared", "koi8-r", "koi8-r", "Принтер"),
    ("Windows-1251 as declared", "windows-1251", "cp1251", "Принтер сломан"),
]


def _b_word(label: str, raw: bytes) -> str:
    return f"=?{label}?B?{base64.b64encode(raw).decode('ascii')}?="


def _q_word(label: str, raw: bytes) -> str:
    encoded = quopri.encodestring(raw, header=True).decode("ascii").replace("=\n", "")
    return f"=?{label}?Q?{encoded}?="


@pytest.mark.parametrize(("label", "codec", "text"), [c[1:] for c in OVERSTEPPED], ids=[c[0] for c in OVERSTEPPED])
def test_encoded_words_get_the_fallback_chain(label: str, codec: str, text: str) -> None:
    raw = text.encode(codec)
    assert decode_encoded_words(_b_word(label, raw)) == text
    assert decode_encoded_words(f"Re: {_q_word(label, raw)} [TCK-1]") == f"Re: {text} [TCK-1]"


@pytest.mark.parametrize(("label", "codec", "text"), [c[1:] for c in OVERSTEPPED], ids=[c[0] for c in OVERSTEPPED])
def test_bodies_get_the_same_chain(label: str, codec: str, text: str) -> None:
    decoded, _note = decode_bytes(text.encode(codec), label)
    assert decoded == text


def test_a_superset_is_no_defect_but_a_wrong_label_is() -> None:
    assert decode_bytes("朱镕基".encode("gbk"), "gb2312") == ("朱镕基", None)
    text, note = decode_bytes("Grüße".encode(), "us-ascii")
    assert text == "Grüße" and note is not None and "utf-8" in note


def test_subject_declared_gb2312_with_gbk_bytes_is_decoded_in_a_parsed_message() -> None:
    subject = _b_word("gb2312", "关于朱镕基的打印机".encode("gbk"))
    raw = f"From: a@acme.example\nSubject: {subject}\nContent-Type: text/plain; charset=gb2312\n\nhi\n".encode()
    assert parse_message(raw).subject == "关于朱镕基的打印机"


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("=?utf-8?q?=C3=BC_=3D=3Futf-8=3FB=3F=2F=2F7D=3F=3D?=", "ü =?utf-8?B?//7D?="),  # decoded once, never twice
        ("=?utf-8?B?A?=", "=?utf-8?B?A?="),  # base64 beyond repair: kept as it came
        ("x =?utf-8?B?QUJD?= y", "x ABC y"),
        ("plain subject", "plain subject"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # the space between two words is not text (RFC 2047)
        ("=?windows-1252?Q?Hans_B=C4KO?= =?iso-8859-15?q?Sch=F6nland?=", "Hans BÄKOSchönland"),
        ("[TCK-7] =?iso-8859-1?q?M=FCller?=", "[TCK-7] Müller"),
    ],
)
def test_encoded_word_edge_cases(value: str, decoded: str) -> None:
    assert decode_encoded_words(value) == decoded


def test_known_charset_normalises_labels() -> None:
    assert known_charset(' "ISO-8859-1" ') == "iso8859-1"
    assert known_charset("x-gbk") == "gbk"
    assert known_charset("no-such-charset") is None
    assert known_charset("utf-8\x00") is None
    assert known_charset(None) is None
