"""The corpus while serving: list and read articles, add one (JSON or a file upload), delete one.

Writes go through Engine.change (serialised, then an atomic swap to the new index version), so queries keep
being answered from the previous version while a write embeds. An upload is parsed by rag.documents, the
same loader as `rag index` (so the same formats, id rules and error messages); a JSON article is parsed as
one .jsonl line for the same reason.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.dependencies import DocId, EngineDep
from api.engine import Engine
from api.schemas import ChangeReport, DocumentIn, DocumentOut, DocumentSummary, ErrorOut, Segment, SkippedInput
from rag.citations import format_citation_id, parse_citation_id, split_by_spans
from rag.documents import SUPPORTED_SUFFIXES, load_paths
from rag.errors import DocumentNotFound
from rag.indexer import IndexReport
from rag.types import Document

router = APIRouter(prefix="/documents", tags=["documents"],
                   responses={404: {"model": ErrorOut, "description": "no such document"}})


def _summary(d: Document) -> dict:
    # the server-side file path is left out on purpose: it says nothing to a client and leaks the layout
    return {"id": d.id, "title": d.title, "date": d.date, "source": d.source, "url": d.url, "chars": len(d.text)}


@router.get("", response_model=list[DocumentSummary])
def list_documents(engine: EngineDep) -> list[DocumentSummary]:
    return [DocumentSummary(**_summary(d)) for d in engine.assistant.store.documents()]


@router.get("/{doc_id:path}", response_model=DocumentOut,
            responses={422: {"description": "a malformed citation id, or one of another document"}})
def read_document(doc_id: DocId, engine: EngineDep,
                  cite: Annotated[list[str], Query(max_length=100, description="citation ids of this document: "
                                                   "`segments` cuts the text at their spans")] = ()) -> DocumentOut:
    doc = engine.assistant.store.document(doc_id)
    if doc is None:
        raise DocumentNotFound(f"no document {doc_id!r} in the index")
    if not cite:
        return DocumentOut(**_summary(doc), text=doc.text)
    spans = {}
    for cid in cite:
        cited_doc, span = parse_citation_id(cid)
        if cited_doc != doc_id:
            raise HTTPException(422, f"citation {cid!r} is not of document {doc_id!r}")
        spans[format_citation_id(cited_doc, span)] = span
    return DocumentOut(**_summary(doc), text=doc.text,
                       segments=[Segment(text=t, citations=ids) for t, ids in split_by_spans(doc.text, spans)])


@router.delete("/{doc_id:path}", response_model=ChangeReport)
def delete_document(doc_id: DocId, engine: EngineDep) -> ChangeReport:
    report = engine.change(delete=[doc_id])
    if not report.removed:
        raise DocumentNotFound(f"no document {doc_id!r} in the index")
    return _report(report)


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": DocumentIn.model_json_schema()},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": f"an article: {', '.join(SUPPORTED_SUFFIXES)}; "
                                                   "a .jsonl file may hold several"}}}},
    },
}


@router.post("", status_code=201, response_model=ChangeReport, openapi_extra={"requestBody": _UPLOAD_BODY},
             responses={413: {"model": ErrorOut, "description": "body over RAG_MAX_UPLOAD_BYTES"},
                        415: {"model": ErrorOut, "description": "neither JSON nor a supported file"},
                        422: {"description": "an article that cannot be indexed, and why"}})
async def add_document(request: Request, engine: EngineDep) -> ChangeReport:
    """Add or replace articles: one as JSON (`id`, `text`, optional `title`, `date`, `source`, `url`), or a
    file upload (multipart field `file`) of a supported type. The body size is capped (RAG_MAX_UPLOAD_BYTES)
    by the app's middleware before this runs."""
    # async: it reads the body itself (JSON or multipart), then embeds and writes in the threadpool
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            doc = DocumentIn.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError([{**err, "loc": ("body", *err["loc"])}
                                          for err in e.errors(include_url=False, include_context=False)]) from None
        if ".." in doc.id:
            raise HTTPException(422, f"document id {doc.id!r} contains '..'")
        name, data = "article.jsonl", doc.model_dump_json().encode()
    elif kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=1) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(422, "expected a file in the multipart field 'file'")
            name, data = upload.filename or "", await upload.read()
        _check_file_name(name)
        if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise HTTPException(415, f"unsupported file type {Path(name).suffix or '(none)'!r}; "
                                     f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    else:
        raise HTTPException(415, "send one article as application/json or a file as multipart/form-data")
    return await run_in_threadpool(_ingest, engine, name, data)


def _check_file_name(name: str) -> None:
    if not name or any(c in name for c in "/\\\x00") or name.startswith("."):
        raise HTTPException(422, f"file name {name!r} must be a plain name (no path characters, not hidden)")
    try:
        too_long = len(name.encode("utf-8")) > 200  # file systems stop at 255 bytes
    except UnicodeEncodeError:
        raise HTTPException(422, "the file name is not valid Unicode") from None
    if too_long:
        raise HTTPException(422, "the file name is longer than 200 bytes")


def _ingest(engine: Engine, name: str, data: bytes) -> ChangeReport:
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        loaded = load_paths([path])
    skipped = [SkippedInput(path=name, line=s.line, reason=s.reason) for s in loaded.skipped]
    if not loaded.documents:
        reasons = "; ".join(f"{name}{f':{s.line}' if s.line else ''}: {s.reason}" for s in loaded.skipped)
        raise HTTPException(422, f"nothing to index: {reasons or 'no article found'}")
    # path="": the temporary file is gone, and a path would tie the document to a folder `rag index` scans
    report = engine.change(upsert=[dataclasses.replace(d, path="") for d in loaded.documents])
    return _report(report, skipped)


def _report(report: IndexReport, skipped: list[SkippedInput] = ()) -> ChangeReport:
    return ChangeReport(added=report.added, updated=report.updated, removed=report.removed,
                        unchanged=report.unchanged, skipped=list(skipped), documents=report.documents,
                        chunks=report.chunks, seconds=round(report.seconds, 3))
