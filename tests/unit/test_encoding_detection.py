import codecs

from advocado.services.importing import detect_encoding


def test_utf8_with_and_without_bom() -> None:
    text = "external_id,comment\n1,系统稳定，功能全面\n".encode()
    assert detect_encoding(text) == "utf-8"
    assert detect_encoding(codecs.BOM_UTF8 + text) == "utf-8-sig"


def test_gb18030() -> None:
    assert (
        detect_encoding("external_id,comment\n1,系统稳定，功能全面，客服响应快\n".encode("gb18030"))
        == "gb18030"
    )


def test_mostly_utf8_with_a_few_broken_bytes_stays_utf8() -> None:
    good = ("1,很好用 love it\n" * 200).encode()
    assert detect_encoding(good + b"2,bad \xff byte\n" + good) == "utf-8"


def test_a_sample_cut_inside_a_character_is_still_utf8() -> None:
    data = "好" * 100
    assert detect_encoding(data.encode()[:-1]) == "utf-8"
