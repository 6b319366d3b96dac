"""Hostile or broken uploads must fail with a clear CellMLError and leak nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from labkit.cellml import MAX_CELLML_BYTES, CellMLError, parse_cellml, parse_cellml_file

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = REPO_ROOT / ".." / "shared" / "webdata" / "models"

NS10 = "http://www.cellml.org/cellml/1.0#"
BODY = '<component name="c"><variable name="x" units="mV"/></component>'


def _secret_markers() -> list[str]:
    """Text that would betray a successful read of /etc/passwd."""
    markers = ["root:x:0:0", "/bin/bash", "/usr/sbin/nologin"]
    try:
        first = Path("/etc/passwd").read_text().splitlines()[0]
        markers.append(first)
    except (OSError, IndexError):
        pass
    return markers


def _assert_no_leak(err: CellMLError, captured: str = "") -> None:
    texts = [str(err), repr(err), err.message, str(err.detail), " ".join(map(str, err.args)), captured]
    for marker in _secret_markers():
        for text in texts:
            assert marker not in text


def _raises(data: bytes, **kwargs: int) -> CellMLError:
    with pytest.raises(CellMLError) as info:
        parse_cellml(data, **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


XXE = f"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<model xmlns="{NS10}" name="&x;"><component name="c">
<variable name="x" units="mV" initial_value="&x;"/></component><documentation>&x;</documentation></model>
""".encode()

XXE_PARAMETER = f"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<model xmlns="{NS10}" name="m">{BODY}</model>
""".encode()

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + f']>\n<model xmlns="{NS10}" name="&lol9;">{BODY}</model>\n'
).encode()

EXTERNAL_DTD = f"""<?xml version="1.0"?>
<!DOCTYPE model SYSTEM "http://example.invalid/evil.dtd">
<model xmlns="{NS10}" name="m">{BODY}</model>
""".encode()

PUBLIC_DTD = f"""<!DOCTYPE model PUBLIC "-//X//DTD Y//EN" "file:///etc/passwd">
<model xmlns="{NS10}" name="m">{BODY}</model>
""".encode()

BARE_DOCTYPE = f"""<!-- a comment first -->
<!DOCTYPE model>
<model xmlns="{NS10}" name="m">{BODY}</model>
""".encode()


def test_xxe_is_rejected_without_reading_the_file(capfd: pytest.CaptureFixture[str]) -> None:
    err = _raises(XXE)
    assert "DOCTYPE" in str(err) and "entit" in str(err)
    assert err.line == 2
    captured = capfd.readouterr()
    _assert_no_leak(err, captured.out + captured.err)


def test_xxe_parameter_entity_is_rejected(capfd: pytest.CaptureFixture[str]) -> None:
    err = _raises(XXE_PARAMETER)
    assert "entit" in str(err)
    captured = capfd.readouterr()
    _assert_no_leak(err, captured.out + captured.err)


def test_xxe_in_utf16_is_rejected(capfd: pytest.CaptureFixture[str]) -> None:
    data = XXE.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    for encoded in (data.encode("utf-16"), data.encode("utf-16-le"), data.encode("utf-16-be")):
        err = _raises(encoded)
        assert "DOCTYPE" in str(err)
        captured = capfd.readouterr()
        _assert_no_leak(err, captured.out + captured.err)


def test_billion_laughs_is_rejected_quickly() -> None:
    start = time.perf_counter()
    err = _raises(BILLION_LAUGHS)
    assert time.perf_counter() - start < 1.0
    assert "DOCTYPE" in str(err) and "entit" in str(err)
    assert len(str(err)) < 500  # nothing was expanded into the message


def test_external_dtd_is_rejected() -> None:
    err = _raises(EXTERNAL_DTD)
    assert "external DTD" in str(err)
    assert err.line == 2
    err = _raises(PUBLIC_DTD)
    assert "external DTD" in str(err)
    _assert_no_leak(err)


def test_any_doctype_is_rejected() -> None:
    err = _raises(BARE_DOCTYPE)
    assert str(err).startswith("rejected DOCTYPE at line 2")


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty file"),
        (b"   \n\t", "empty file"),
        (b"hello, this is not XML", "not XML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not XML"),
        (b'{"model": "json"}', "not XML"),
    ],
)
def test_not_xml(data: bytes, needle: str) -> None:
    err = _raises(data)
    assert needle in str(err)
    assert err.line == 1


def test_truncated_xml_reports_a_line() -> None:
    source = (MODELS / "ten_tusscher_model_2006_epi.cellml")
    if not source.is_file():
        pytest.fail(f"shared test data not found: {source.resolve()}")
    data = source.read_bytes()
    err = _raises(data[: len(data) // 2])
    assert str(err).startswith("not well-formed XML at line ")
    assert err.line is not None and err.line > 100


def test_mismatched_tags() -> None:
    err = _raises(f'<model xmlns="{NS10}" name="m">\n<component name="c">\n</model>'.encode())
    assert str(err).startswith("not well-formed XML at line 3: ")
    assert err.line == 3
    assert "line 3, column" not in err.message  # lxml's own position suffix is tidied away


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"<html><body>hi</body></html>", "<html> with no namespace"),
        (f'<model name="m">{BODY}</model>'.encode(), "<model> with no namespace"),
        (
            f'<model xmlns="http://www.cellml.org/cellml/1.2#" name="m">{BODY}</model>'.encode(),
            "http://www.cellml.org/cellml/1.2#",
        ),
        (
            b'<sbml xmlns="http://www.sbml.org/sbml/level2/version4"><model/></sbml>',
            "<sbml>",
        ),
    ],
)
def test_xml_that_is_not_cellml(data: bytes, needle: str) -> None:
    err = _raises(data)
    assert str(err).startswith("not a CellML model at line 1")
    assert needle in str(err)


def test_oversized_input_is_refused_before_parsing() -> None:
    err = _raises(b" " * (MAX_CELLML_BYTES + 1))
    assert "too large" in str(err)
    err = _raises(f'<model xmlns="{NS10}" name="m">{BODY}</model>'.encode(), max_bytes=10)
    assert "too large" in str(err) and "10 bytes" in str(err)


def test_oversized_file_is_refused_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.cellml"
    with open(big, "wb") as fh:  # sparse: no real disk use
        fh.truncate(MAX_CELLML_BYTES + 1)
    with pytest.raises(CellMLError, match="too large"):
        parse_cellml_file(big)
    small = tmp_path / "small.cellml"
    small.write_bytes(f'<model xmlns="{NS10}" name="m">{BODY}</model>'.encode())
    with pytest.raises(CellMLError, match="too large"):
        parse_cellml_file(small, max_bytes=16)


def test_xinclude_is_not_processed() -> None:
    doc = f"""<model xmlns="{NS10}" xmlns:xi="http://www.w3.org/2001/XInclude" name="m">{BODY}
<xi:include href="file:///etc/passwd" parse="text"/></model>""".encode()
    model = parse_cellml(doc)
    assert model.annotations == ()
    for marker in _secret_markers():
        assert marker not in repr(model)


def test_invalid_rdf_is_reported_with_line() -> None:
    doc = f"""<model xmlns="{NS10}" name="m">{BODY}
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="#a" rdf:ID="b"/>
</rdf:RDF></model>""".encode()
    err = _raises(doc)
    assert str(err).startswith("invalid RDF metadata at line 2")


def test_str_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_cellml(f'<model xmlns="{NS10}" name="m">{BODY}</model>')  # type: ignore[arg-type]


def test_second_line_of_defence_after_parsing() -> None:
    """Even if the byte scan were bypassed, the lxml stage neither resolves entities nor accepts a DOCTYPE."""
    from labkit.cellml.parse import _parse_xml

    content_only_xxe = XXE.replace(b'name="&x;"', b'name="m"').replace(b'initial_value="&x;"', b"")
    for data in (XXE, content_only_xxe, BILLION_LAUGHS, EXTERNAL_DTD, BARE_DOCTYPE):
        with pytest.raises(CellMLError) as info:
            _parse_xml(data, data.decode())
        _assert_no_leak(info.value)
        # lxml itself already refuses entity refs in attributes and network DTDs;
        # what it lets through is caught by the DOCTYPE check after parsing.
        if data in (content_only_xxe, BARE_DOCTYPE):
            assert "DOCTYPE" in str(info.value)


def test_error_survives_pickling() -> None:
    import pickle

    err = _raises(b"<a>\n<b>\n")
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, CellMLError)
    assert (copy.line, copy.message, str(copy)) == (err.line, err.message, str(err))
