import pytest

from rag.citations import format_citation_id, parse_citation_id
from rag.errors import InvalidCitationId
from rag.types import Span


@pytest.mark.parametrize("cid,doc,start,end", [
    ("002_f7322d59d6e02373:812-1034", "002_f7322d59d6e02373", 812, 1034),
    ("arcd-p0001:0-5", "arcd-p0001", 0, 5),
    ("مقال.1:3-9", "مقال.1", 3, 9),
])
def test_parse_roundtrip(cid, doc, start, end):
    assert parse_citation_id(cid) == (doc, Span(start, end))
    assert format_citation_id(doc, Span(start, end)) == cid


@pytest.mark.parametrize("cid", [
    "", "nocolon", "doc:5", "doc:5-", "doc:-5", "doc:a-b", "doc:9-3", "doc:4-4", "../etc/passwd:0-10",
    "a/b:0-10", "doc:0-10:extra", " :0-1", "doc:0-99999999999",
])
def test_malformed_ids_are_refused_with_the_expected_form(cid):
    with pytest.raises(InvalidCitationId, match="<doc_id>:<start>-<end>|start must be smaller"):
        parse_citation_id(cid)
