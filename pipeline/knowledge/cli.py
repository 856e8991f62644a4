"""Operator commands for knowledge bases (wired as ``claw-pipeline kb …`` and ``db upgrade``).

``ingest`` sends every .txt/.md file under a folder through the same
``vectorize_document`` task the API uses (so the workers do the embedding and
the usual retries apply), as one workflow group, and follows the group's
counts with a progress bar.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import client, workflow
from pipeline.errors import PermanentError
from pipeline.knowledge import db, retrieval, store
from pipeline.knowledge.db import connection
from pipeline.knowledge.embedders import get_embedder
from pipeline.knowledge.indexing import MAX_TEXT_CHARS, VECTORIZE_ACTOR, error_text
from pipeline.knowledge.migrations import upgrade

SUFFIXES = (".txt", ".md")


def db_upgrade(console: Optional[Console] = None) -> int:
    """Apply pending schema migrations and say which."""
    console = console or Console()
    applied = upgrade()
    console.print(f"applied: {', '.join(applied)}" if applied else "database schema is up to date")
    return 0


def ingest(path: str | Path, kb_name: str, *, poll_interval: float = 0.5, console: Optional[Console] = None) -> int:
    """Vectorize every .txt/.md file under ``path`` into the base ``kb_name`` (created if new).

    Returns 0 when every file was stored, 1 when some failed (they are listed).
    """
    console = console or Console()
    root = Path(path)
    files, outside = documents_under(root)
    if not files:
        console.print(f"[red]no .txt or .md files under {root}[/red]")
        return 1

    embedder = get_embedder()
    with connection() as conn:
        kb = store.ensure_knowledge_base(conn, kb_name, embedder.model_name, embedder.dim)
    try:
        kb.check_embedder(embedder.model_name, embedder.dim)
    except PermanentError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    store.ensure_index(db.database_url(), kb)

    failures: list[tuple[str, str]] = [(source, "a link leading outside the folder (or nowhere): not read") for source in outside]
    sources, members = [], []
    for file in files:
        source = file.name if file == root else file.relative_to(root).as_posix()
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            failures.append((source, f"cannot read: {exc}"))
            continue
        if len(text) > MAX_TEXT_CHARS:
            failures.append((source, f"longer than {MAX_TEXT_CHARS} characters"))
            continue
        sources.append(source)
        members.append(workflow.signature(VECTORIZE_ACTOR, knowledge_base_id=str(kb.id), source=source, text=text))
    outcome = {"vectorized": 0, "skipped": 0}
    if members:
        workflow_id = workflow.group(members).submit(name=f"ingest {root} into {kb_name}")
        console.print(f"workflow {workflow_id}: {len(members)} files")
        _follow(workflow_id, poll_interval, console, kb_name)
        for member in _members(workflow_id, len(members)):
            source = sources[member["index"]]
            if member["state"] != "SUCCESS":
                failures.append((source, error_text(member)))
            else:
                status = (member.get("result") or {}).get("status")
                outcome["vectorized" if status == "vectorized" else "skipped"] += 1

    console.print(
        f"{kb_name} ({kb.id}): {outcome['vectorized']} vectorized, {outcome['skipped']} unchanged, "
        f"{len(failures)} failed"
    )
    if failures:
        table = Table("file", "error", title="failures")
        for source, error in failures:
            table.add_row(source, error)
        console.print(table)
    return 1 if failures else 0


def documents_under(root: Path) -> tuple[list[Path], list[str]]:
    """The .txt/.md files of *root* (a file, or a folder walked recursively), and the names of those left out
    because they are links leading outside it.

    A link is followed only when its target is inside the folder: a folder
    handed over for ingesting must not make the command read (and send to the
    workers, the database and every user who can search the base) a file
    elsewhere on the machine, such as one a link in an unpacked archive names.
    """
    if root.is_file():
        return ([root] if root.suffix.lower() in SUFFIXES else []), []
    base = root.resolve()
    inside, outside = [], []
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into linked folders
        folder = Path(dirpath)
        for name in dirnames:
            if (folder / name).is_symlink() and not (folder / name).resolve().is_relative_to(base):
                outside.append((folder / name).relative_to(root).as_posix() + "/")
        for name in filenames:
            file = folder / name
            if file.suffix.lower() not in SUFFIXES:
                continue
            if file.resolve().is_relative_to(base) and file.resolve().is_file():
                inside.append(file)
            else:
                outside.append(file.relative_to(root).as_posix())
    return sorted(inside), sorted(outside)


def _follow(workflow_id: str, poll_interval: float, console: Console, label: str) -> dict:
    """A progress bar over the workflow's counts (one small read per tick) until it is final."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        state = workflow.get(workflow_id, limit=0)
        bar = progress.add_task(f"vectorizing into {label}", total=state["total"], counts="")
        while True:
            counts = state["counts"]
            progress.update(bar, completed=state["total"] - counts["pending"],
                            counts=f"{counts['failed']} failed" if counts["failed"] else "")
            if state["state"] != "RUNNING" and counts["pending"] == 0:
                return state
            time.sleep(poll_interval)
            state = workflow.get(workflow_id, limit=0)


def _members(workflow_id: str, total: int, page: int = 500):
    """Every member of the workflow with its record's result, page by page."""
    for offset in range(0, total, page):
        members = workflow.get(workflow_id, offset=offset, limit=page)["members"]
        records = client.get_records([m["task_id"] for m in members])
        for member, record in zip(members, records):
            yield {**member, "result": (record or {}).get("result")}


def search(kb_name: str, question: str, k: int = 5, console: Optional[Console] = None) -> int:
    """Print the ``k`` documents that best answer ``question``."""
    console = console or Console()
    with connection() as conn:
        kb = store.find_knowledge_base(conn, kb_name)
    if kb is None:
        console.print(f"[red]no knowledge base named {kb_name!r}[/red]")
        return 1
    try:
        hits = retrieval.search(kb.id, question, k)
    except PermanentError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    table = Table("#", "score", "cosine", "title", "source", "passage", title=f"{kb_name}: {question}")
    for rank, hit in enumerate(hits, start=1):
        passage = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.3f}", f"{hit.similarity:.3f}", hit.title, hit.source,
                      passage[:160] + ("…" if len(passage) > 160 else ""))
    console.print(table)
    return 0
