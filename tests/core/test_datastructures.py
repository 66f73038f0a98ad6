"""Headers (case-insensitive, multi-valued, as sent) and UploadedFile."""

from __future__ import annotations

import pytest

from nbroutes.core.datastructures import Headers, UploadedFile

LINES = [("Accept", "text/html"), ("X-Tag", "a"), ("accept", "application/json"), ("x-tag", "b")]


def test_names_are_case_insensitive():
    headers = Headers([("Content-Type", "text/plain")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "text/plain"
    assert "content-TYPE" in headers
    assert headers.get("Content-type") == "text/plain"


def test_repeated_lines_join_with_a_comma_as_node_does():
    headers = Headers(LINES)
    assert headers["accept"] == "text/html, application/json"
    assert headers.get("X-TAG") == "a, b"


def test_getlist_gives_every_value_in_order():
    headers = Headers(LINES)
    assert headers.getlist("ACCEPT") == ["text/html", "application/json"]
    assert headers.getlist("missing") == []


def test_a_missing_name_is_a_key_error_or_the_default():
    headers = Headers(LINES)
    with pytest.raises(KeyError):
        headers["authorization"]
    assert headers.get("authorization") is None
    assert headers.get("authorization", "none") == "none"


@pytest.mark.parametrize("name", [1, None, b"accept"])
def test_only_strings_are_names(name):
    assert name not in Headers(LINES)


def test_iteration_and_length_count_each_name_once_lower_cased():
    headers = Headers(LINES)
    assert list(headers) == ["accept", "x-tag"]
    assert len(headers) == 2
    assert dict(headers) == {"accept": "text/html, application/json", "x-tag": "a, b"}


def test_raw_keeps_the_lines_as_sent():
    assert Headers(LINES).raw() == LINES


def test_a_mapping_is_one_line_per_key():
    headers = Headers({"Content-Length": "3", "ETag": '"x"'})
    assert headers.raw() == [("Content-Length", "3"), ("ETag", '"x"')]
    assert headers["etag"] == '"x"'


def test_headers_are_not_changed_by_changing_what_they_were_made_from():
    lines = [("A", "1")]
    headers = Headers(lines)
    lines.append(("A", "2"))
    assert headers.getlist("a") == ["1"]


def test_repr_shows_the_joined_values():
    assert repr(Headers([("A", "1"), ("a", "2")])) == "Headers({'a': '1, 2'})"


def test_uploaded_file_size_text_and_repr():
    upload = UploadedFile("notes.txt", "text/plain", "café".encode())
    assert upload.size == 5
    assert upload.text() == "café"
    assert upload.text("latin-1") == "cafÃ©"
    # The repr never shows the content, which may be large or binary.
    assert repr(upload) == "UploadedFile(filename='notes.txt', content_type='text/plain', size=5)"


def test_uploaded_file_is_frozen():
    upload = UploadedFile("a.bin", "application/octet-stream", b"\x00")
    with pytest.raises(AttributeError):
        upload.filename = "b.bin"  # type: ignore[misc]
