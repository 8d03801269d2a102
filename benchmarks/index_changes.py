"""What one article's change costs the segmented index (rag/store/local), against embedding the article alone.

At each size: add a new three-sentence article (`rag index FILE`), replace it with an edited version, remove it
(`rag rm`), each --repeats times with a different article; the median time of each, against the median time of
embedding the same article alone (rag.indexer.embed_documents, the model loaded, in the same run), and the bytes
each wrote (files created or rewritten), against the index's size. Then the bytes on disk per passage by file kind
(for the token codec's budget). With --old-code PATH (a checkout of the version before segments, e.g. /work/main):
the same add through that version, on the same index in its format, as the old figure.

Sizes: the bundled articles (indexed from scratch), and the pooled dev corpus (../shared/eval: ARCD + MLQA
paragraphs + the bundled articles) migrated from the eval cache's index without re-embedding (its first `rag eval`
built it), once as is and once with its 1,215 passages committed a second time under other ids (2,430: real
passages and vectors, a second copy, so the size of a 2,000-passage index without embedding it). With --copies N...:
also committed N times (one commit per copy, merged by the tiered policy as it goes, as an archive's daily
additions are; 8 = 9,720 passages, 82 = 99,630, 823 = 1,000,000), there the same changes, then `rag index
--compact` (its time and bytes) and the changes again on the one segment it leaves; 823 copies take about 15 GB
of disk and 10 minutes. The page cache is flushed (os.sync) before each size's changes: building a large index
leaves GBs of writeback that would slow their fsyncs.

    .venv/bin/python benchmarks/index_changes.py [--repeats 5] [--copies 8 82 823] [--old-code /work/main] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chain import index_spec  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.documents import load_paths  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import eval_index_dir  # noqa: E402
from rag.indexer import embed_documents, index_paths, remove_documents  # noqa: E402
from rag.store import IndexStore, commit, read_manifest, write_lock  # noqa: E402
from rag.store.local.compaction import maybe_compact, merged_segment  # noqa: E402
from rag.store.local.packed import array_sizes  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
POOLED = [EVAL / "arcd" / "corpus.jsonl", EVAL / "mlqa_ar_dev" / "corpus.jsonl", BUNDLED_ARTICLES]


def article(i: int, edit: str = "") -> str:
    return (f"افتتاح مكتبة {i}\nافتتحت البلدية مكتبة عامة جديدة رقم {i} في وسط المدينة. وقال رئيس البلدية إن المكتبة "
            f"تضم آلاف الكتب باللغتين العربية والإنجليزية. وتفتح المكتبة أبوابها يوميا من التاسعة صباحا{edit}.\n")


def files(index_dir: Path) -> dict[Path, tuple]:
    return {f: (f.stat().st_ino, f.stat().st_mtime_ns, f.stat().st_size) for f in index_dir.rglob("*") if f.is_file()}


def written(index_dir: Path, fn) -> tuple[int, float]:
    before = files(index_dir)
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return sum(v[2] for f, v in files(index_dir).items() if before.get(f) != v), seconds


def size(index_dir: Path) -> int:
    return sum(v[2] for v in files(index_dir).values())


def per_passage(index_dir: Path) -> dict[str, float]:
    manifest = read_manifest(index_dir)
    kinds: dict[str, int] = {}
    for e in manifest.segments:
        for name, info in e["files"].items():
            parts = array_sizes(index_dir / "segments" / e["name"] / name) if name == "arrays.bin" else \
                {name.split(".")[0]: info["size"]}
            if name == "arrays.bin":
                parts["arrays.bin header"] = info["size"] - sum(parts.values())
            for part, size in parts.items():
                kind = part if not part.startswith("lex_") else "lexical (lex_*)"
                kinds[kind] = kinds.get(kind, 0) + size
    kinds["manifest + tombstones"] = (index_dir / "manifest.json").stat().st_size
    return {k: round(v / max(1, manifest.chunks)) for k, v in sorted(kinds.items())}


def measure(index_dir: Path, spec, repeats: int, work: Path) -> dict:
    os.sync()  # an index just built leaves GBs of dirty pages, whose writeback would slow the changes' fsyncs
    settings_dir = work / "articles"
    settings_dir.mkdir(exist_ok=True)
    total = size(index_dir)
    rows = {"add": [], "replace": [], "remove": [], "embed": []}
    for r in range(repeats):
        path = settings_dir / f"lib{r}.txt"
        path.write_text(article(r), encoding="utf-8")
        rows["add"].append(written(index_dir, lambda: index_paths([path], index_dir, spec)))
        path.write_text(article(r, " والعاشرة مساء"), encoding="utf-8")
        rows["replace"].append(written(index_dir, lambda: index_paths([path], index_dir, spec)))
        rows["remove"].append(written(index_dir, lambda: remove_documents(index_dir, [f"lib{r}"])))
        docs = {d.id: d for d in load_paths([path]).documents}
        t0 = time.perf_counter()
        embed_documents(spec, docs, list(docs))
        rows["embed"].append((0, time.perf_counter() - t0))
    embed = statistics.median(s for _, s in rows["embed"])
    out = {"passages": read_manifest(index_dir).chunks, "index_bytes": total,
           "embed_article_ms": round(embed * 1000, 1)}
    for op in ("add", "replace", "remove"):
        b = statistics.median(x for x, _ in rows[op])
        s = statistics.median(x for _, x in rows[op])
        out[op] = {"bytes": int(b), "share_of_index": round(b / total, 5), "ms": round(s * 1000, 1),
                   "ms_over_embedding": round((s - (embed if op != "remove" else 0)) * 1000, 1),
                   "ratio_to_embedding": round(s / embed, 2)}
    out["bytes_per_passage"] = per_passage(index_dir)
    return out


def grown(index_dir: Path, copies: int) -> float:
    """Commit the index's passages `copies - 1` more times under other ids (`<id>~2`, `<id>~3`, ...), one commit
    each, merged by the index's tiered policy as it goes, as an archive's daily additions are: `copies` times the
    size, real data (the same passages, vectors and token codes). Returns the seconds it took."""
    t0 = time.perf_counter()
    with write_lock(index_dir):
        store = IndexStore.open(index_dir)
        data = merged_segment(store, list(range(len(store.segments))))
        store.close()
    for c in range(2, copies + 1):
        copy = replace(data, documents=[replace(d, id=f"{d.id}~{c}") for d in data.documents],
                       chunks=[replace(ch, doc_id=f"{ch.doc_id}~{c}") for ch in data.chunks])
        with write_lock(index_dir):  # one lock per addition, as `rag index` takes: releasing it removes merged files
            commit(index_dir, read_manifest(index_dir), None, add=[copy])
            maybe_compact(index_dir)
    return time.perf_counter() - t0


def compaction(index_dir: Path) -> dict:
    """`rag index --compact` on the index: every segment merged into one, its time and the bytes it wrote."""
    segments = len(read_manifest(index_dir).segments)
    with write_lock(index_dir):
        b, s = written(index_dir, lambda: maybe_compact(index_dir, force=True))
    return {"segments_before": segments, "seconds": round(s, 2), "bytes": b, "bytes_per_passage":
            round(b / read_manifest(index_dir).chunks)}


def old_add(old_code: Path, legacy_dir: Path, work: Path, repeats: int) -> dict:
    """One article added by the version before segments, on a copy of the same index in its own format."""
    runs = []
    for r in range(repeats):
        target = work / f"old-{r}"
        shutil.copytree(legacy_dir, target)
        path = work / f"old-{r}.txt"
        path.write_text(article(100 + r), encoding="utf-8")
        before = files(target)
        env = {**os.environ, "PYTHONPATH": str(old_code), "RAG_INDEX_DIR": str(target)}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", "index", str(path)], env=env, check=True,
                       capture_output=True, cwd=old_code)
        seconds = time.perf_counter() - t0
        runs.append((sum(v[2] for f, v in files(target).items() if before.get(f) != v), seconds))
        shutil.rmtree(target)
    total = sum(f.stat().st_size for f in legacy_dir.rglob("*") if f.is_file())
    b = statistics.median(x for x, _ in runs)
    return {"index_bytes": total, "add_bytes": int(b), "share_of_index": round(b / total, 4),
            "add_process_s": round(statistics.median(s for _, s in runs), 2)}


def pooled_index(settings, embedder, given: Path | None) -> Path:
    """The eval cache's index of the pooled corpus for this model and runtime (read, never written: copied)."""
    if given is not None:
        return given
    cached = eval_index_dir(POOLED, settings, embedder.model_id, embedder.runtime_name)
    if (cached / "manifest.json").exists() or (cached / "CURRENT").exists():
        return cached
    # Another checkout's (the key holds the bundled articles' paths): the newest with the pooled corpus's size.
    found = []
    for manifest in (settings.cache_dir / "eval").glob("*/v-*/manifest.json"):
        m = json.loads(manifest.read_text())
        if (m.get("model_id"), m.get("runtime", "torch"), m.get("documents")) == \
                (embedder.model_id, embedder.runtime_name, 904) and m.get("stemmer"):
            found.append((m.get("created", 0), manifest.parent.parent))
    if not found:
        sys.exit("no pooled eval index in the cache: run `rag eval` on ../shared/eval first, or pass --pooled-index")
    return max(found)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--old-code", type=Path, default=None)
    ap.add_argument("--pooled-index", type=Path, default=None, help="an index of the pooled corpus (copied)")
    ap.add_argument("--copies", type=int, nargs="*", default=[],
                    help="also at the pooled corpus committed this many times (8: about 10,000 passages, 82: 100,000),"
                         " with the compaction of each into one segment")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = get_settings()
    embedder = Embedder(settings)
    spec = index_spec(settings, embedder)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundled = work / "bundled"
        index_paths([BUNDLED_ARTICLES], bundled, spec)
        results["bundled"] = measure(bundled, spec, args.repeats, work)
        cached = pooled_index(settings, embedder, args.pooled_index)
        pooled = work / "pooled"
        shutil.copytree(cached, pooled, ignore=shutil.ignore_patterns(".lock"))
        legacy_copy = work / "pooled-legacy"
        if (pooled / "CURRENT").exists():
            shutil.copytree(pooled, legacy_copy)
        t0 = time.perf_counter()
        report = index_paths(POOLED, pooled, spec)  # migrates a legacy copy without re-embedding
        results["migration"] = {"seconds": round(time.perf_counter() - t0, 2), "notice": report.notice,
                                "embedded": report.chunks_embedded}
        results["pooled"] = measure(pooled, spec, args.repeats, work)
        for copies in [2, *args.copies]:
            base = work / "pooled-base"
            if not base.exists():  # the pooled index as it was, for each size to grow from
                shutil.copytree(pooled, base)
            grow = work / f"pooled-x{copies}"
            shutil.copytree(base, grow)
            built = grown(grow, copies)
            name = f"pooled x{copies}"
            results[name] = {**measure(grow, spec, args.repeats, work), "build_s": round(built, 1)}
            if copies > 2:
                results[name]["compaction"] = compaction(grow)
                results[name]["after compaction"] = measure(grow, spec, args.repeats, work)
            shutil.rmtree(grow)
        if args.old_code and legacy_copy.exists():
            results["old (before segments), pooled"] = old_add(args.old_code, legacy_copy, work, max(1, args.repeats // 2))
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    for name, r in results.items():
        print(f"== {name}")
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
