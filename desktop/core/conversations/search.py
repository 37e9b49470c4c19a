"""Full-text search over messages (SQLite FTS5), safe for whatever a person types.

The index is ``messages_fts`` (schema 2 of :mod:`desktop.core.conversations.store`): an external-content FTS5
table over ``messages.content`` with the ``unicode61 remove_diacritics 2`` tokenizer, kept in step
by triggers. A query is split into words the way that tokenizer splits text; each word is quoted
(so FTS5 operators such as ``AND``, ``NEAR``, ``*``, ``"`` or ``:`` typed by a person are plain
text) and the last word matches as a prefix, so results appear while typing. All words must
occur in a message (implicit AND); "cafe" finds "café".

Snippets wrap each matched word in :data:`MATCH_START` ... :data:`MATCH_END` (control
characters that never occur in typed text); :func:`mark_matches` turns them into visible marks.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from desktop.core.conversations.records import StoreError

MATCH_START = "\x02"  # starts a matched word in SearchHit.snippet
MATCH_END = "\x03"  # ends it
ELLIPSIS = "…"  # where a snippet cuts the message
SNIPPET_TOKENS = 16  # words of context a snippet shows

_WORD = re.compile(r"[^\W_]+")  # unicode61: letters and digits are word characters, the rest separates


@dataclass(frozen=True)
class SearchHit:
    """One matching message. ``rank`` is FTS5's bm25 score: lower is a better match."""

    conversation_id: int
    conversation_title: str
    message_id: int
    role: str
    snippet: str
    rank: float
    in_thinking: bool = False  # the match is in the answer's reasoning, not its text


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for a person's query; None when it has no words to look for."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def search_messages(db: sqlite3.Connection, query: str, limit: int = 50, *,
                    thinking: bool = False) -> list[SearchHit]:
    """Messages matching ``query`` in conversations not deleted, best match first; with
    ``thinking``, matches in answers' reasoning too (``in_thinking`` marks them).

    FTS5 ranks fastest when it sees ``ORDER BY rank LIMIT n`` on its own table, so the best
    ``2 * limit + 20`` matches are taken there and deleted conversations filtered out after; only
    when that leaves too few (many matches in deleted conversations) is every match ranked.
    """
    expression = fts_query(query)
    if expression is None or limit <= 0:
        return []
    hits = _search_index(db, "messages_fts", expression, limit)
    if thinking:
        hits = sorted(hits + _search_index(db, "reasoning_fts", expression, limit), key=lambda h: h.rank)[:limit]
    return hits


def _search_index(db: sqlite3.Connection, index: str, expression: str, limit: int) -> list[SearchHit]:
    fetch = 2 * limit + 20
    hits, fetched = _ranked(db, expression, limit, fetch, index)
    if len(hits) < limit and fetched == fetch:
        hits, _ = _ranked(db, expression, limit, -1, index)
    return hits


def _ranked(db: sqlite3.Connection, expression: str, limit: int, fetch: int,
            index: str = "messages_fts") -> tuple[list[SearchHit], int]:
    rows = db.execute(
        f"""SELECT f.rowid, f.rank, f.snippet, m.conversation_id, m.role, c.title, c.deleted_at
           FROM (SELECT rowid, rank, snippet({index}, 0, ?, ?, ?, ?) AS snippet FROM {index}
                 WHERE {index} MATCH ? ORDER BY rank LIMIT ?) AS f
           JOIN messages m ON m.id = f.rowid
           JOIN conversations c ON c.id = m.conversation_id
           ORDER BY f.rank, f.rowid""",
        (MATCH_START, MATCH_END, ELLIPSIS, SNIPPET_TOKENS, expression, fetch),
    ).fetchall()
    hits = [SearchHit(int(r[3]), str(r[5]), int(r[0]), str(r[4]), str(r[2] or ""), float(r[1] or 0.0),
                      index == "reasoning_fts") for r in rows if r[6] is None]
    return hits[:limit], len(rows)


def mark_matches(snippet: str, start: str = "[", end: str = "]") -> str:
    """``snippet`` with the match markers replaced by visible text (brackets by default)."""
    return snippet.replace(MATCH_START, start).replace(MATCH_END, end)


def is_index_damaged(exc: BaseException) -> bool:
    """True for the errors a damaged or out-of-step FTS index raises (rebuilding it helps)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(
        word in text for word in ("malformed", "fts5", "corrupt", "vtable"))


class SearchOperations:
    """Search methods of :class:`desktop.core.conversations.store.Store` (mixed in; import the store)."""

    _db: sqlite3.Connection
    _transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    read_only: bool

    # -- search --------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 50, *, thinking: bool = False) -> list[SearchHit]:
        """Messages matching the words of ``query`` (never raises on what a person types), best
        first; with ``thinking``, in answers' reasoning too. Snippets mark matches with
        MATCH_START/MATCH_END. A damaged index is rebuilt once."""
        try:
            return search_messages(self._db, query, limit, thinking=thinking)
        except sqlite3.DatabaseError as exc:
            if self.read_only or not is_index_damaged(exc):
                raise
        try:
            self.rebuild_search_index()
            return search_messages(self._db, query, limit, thinking=thinking)
        except sqlite3.DatabaseError as exc:
            raise StoreError("The search index is damaged and could not be rebuilt. Restart Cove: it checks "
                             "the conversation database at start and repairs it.") from exc

    def rebuild_search_index(self) -> None:
        """Rebuild the full-text index from the messages table."""
        with self._transaction() as db:
            db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
            db.execute("INSERT INTO reasoning_fts(reasoning_fts) VALUES ('rebuild')")
