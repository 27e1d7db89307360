"""Near-duplicate search among recent open tickets: the same incident reported again (并案) and hot spots.

Same incident = similar wording + same place + close in time. Similarity is cosine over TF-IDF word vectors
(segmented words, so place and unit names from the city dictionary count as single distinctive terms).

Why this layout: the index must answer in milliseconds with 100,000 open tickets in a small process. Each
ticket keeps only its ``max_terms`` heaviest terms (the distinctive ones; stop-like words weigh little anyway),
postings are compact ``array`` buffers (slot, weight) per term, and a query is a handful of numpy scatter-adds
over the postings of its terms. Terms found in more than ``max_df`` of the live tickets are skipped: they cost
time and say nothing about which incident this is. Removal is a tombstone; postings are compacted when a third
of the slots are dead.

Document frequencies count each ticket's kept terms. IDF is taken from the live index when a ticket is added,
so weights drift slowly as the mix of tickets changes; for duplicate detection among recent tickets that is
what we want (a term that suddenly appears in many tickets is a hot topic and weighs less for telling incidents apart).
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from nlp.segment import Segmenter, default_segmenter

TicketId = Hashable


@dataclass(frozen=True)
class Duplicate:
    ticket_id: TicketId
    score: float


@dataclass
class HotSpot:
    """A cluster of similar requests in one area within the window: a candidate for a hot-spot alert."""

    place_code: str | None
    ticket_ids: list[TicketId]
    first_at: datetime
    last_at: datetime
    top_terms: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.ticket_ids)


def _same_place(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


class DuplicateIndex:
    """Open tickets of the last ``window``; ``query`` finds the same incident, ``hot_spots`` finds clusters.

    Place rule: two tickets with different known places are never the same incident; a ticket without a place
    can match any place (the citizen may simply not have named it). Pass ``same_place`` to use a hierarchy
    (e.g. ``Gazetteer.related`` so a community matches its own street).
    """

    def __init__(
        self,
        window: timedelta = timedelta(days=7),
        *,
        segmenter: Segmenter | None = None,
        max_terms: int = 80,
        max_df: float = 0.05,
        same_place: Callable[[str | None, str | None], bool] = _same_place,
    ) -> None:
        self.window = window
        self.segmenter = segmenter or default_segmenter()
        self.max_terms = max_terms
        self.max_df = max_df
        self.same_place = same_place
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._df: list[int] = []
        self._post_slots: list[array] = []
        self._post_weights: list[array] = []
        self._slot_of: dict[TicketId, int] = {}
        self._ids: list[TicketId | None] = []
        self._places: list[str | None] = []
        self._at = array("d")
        self._dt: list[datetime] = []
        self._alive = array("b")
        self._vectors: list[tuple[array, array] | None] = []
        self._dead = 0

    # -- bookkeeping --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._slot_of

    def _tokens(self, text: str) -> Counter[str]:
        return Counter(w.lower() for w in self.segmenter.cut(text) if len(w) >= 2 or not w.isascii())

    def _idf(self, term_id: int | None, n: int) -> float:
        df = self._df[term_id] if term_id is not None else 0
        return math.log((n + 1) / (df + 1)) + 1.0

    def _vector(self, counts: Counter[str], *, create: bool) -> tuple[list[int], np.ndarray]:
        """Sublinear-tf x idf weights of the heaviest ``max_terms`` terms, L2-normalised."""
        n = len(self._slot_of)
        items: list[tuple[int, float]] = []
        for term, tf in counts.items():
            tid = self._vocab.get(term)
            if tid is None:
                if not create:
                    continue
                tid = len(self._terms)
                self._vocab[term] = tid
                self._terms.append(term)
                self._df.append(0)
                self._post_slots.append(array("i"))
                self._post_weights.append(array("f"))
            items.append((tid, (1.0 + math.log(tf)) * self._idf(tid, n)))
        items.sort(key=lambda it: -it[1])
        items = items[: self.max_terms]
        if not items:
            return [], np.zeros(0, dtype=np.float32)
        weights = np.array([w for _, w in items], dtype=np.float32)
        weights /= float(np.linalg.norm(weights)) or 1.0
        return [tid for tid, _ in items], weights

    # -- mutation -----------------------------------------------------------------------------------------
    def add(self, ticket_id: TicketId, text: str, place_code: str | None, at: datetime) -> None:
        """Index an open ticket (re-adding an id replaces it)."""
        with self._lock:
            if ticket_id in self._slot_of:
                self.remove(ticket_id)
            counts = self._tokens(text)
            term_ids, weights = self._vector(counts, create=True)
            slot = len(self._ids)
            self._ids.append(ticket_id)
            self._places.append(place_code)
            self._at.append(at.timestamp())
            self._dt.append(at)
            self._alive.append(1)
            self._vectors.append((array("i", term_ids), array("f", weights.tolist())))
            self._slot_of[ticket_id] = slot
            for tid, w in zip(term_ids, weights.tolist(), strict=True):
                self._df[tid] += 1
                self._post_slots[tid].append(slot)
                self._post_weights[tid].append(w)

    def remove(self, ticket_id: TicketId) -> bool:
        """Forget a ticket (closed, merged or deleted). Returns False if it was not indexed."""
        with self._lock:
            slot = self._slot_of.pop(ticket_id, None)
            if slot is None:
                return False
            self._alive[slot] = 0
            self._ids[slot] = None
            vec = self._vectors[slot]
            if vec is not None:
                for tid in vec[0]:
                    self._df[tid] -= 1
            self._vectors[slot] = None
            self._dead += 1
            if self._dead > 1000 and self._dead * 3 > len(self._ids):
                self._compact()
            return True

    def expire(self, now: datetime) -> int:
        """Remove tickets older than ``now - window``; returns how many."""
        limit = (now - self.window).timestamp()
        with self._lock:
            old = [tid for tid, slot in self._slot_of.items() if self._at[slot] < limit]
            for tid in old:
                self.remove(tid)
            return len(old)

    def _compact(self) -> None:
        """Rebuild postings without dead slots and recompute document frequencies from the kept terms."""
        alive_slots = [s for s in range(len(self._ids)) if self._alive[s]]
        remap = {old: new for new, old in enumerate(alive_slots)}
        self._ids = [self._ids[s] for s in alive_slots]
        self._places = [self._places[s] for s in alive_slots]
        self._at = array("d", (self._at[s] for s in alive_slots))
        self._dt = [self._dt[s] for s in alive_slots]
        self._alive = array("b", [1] * len(alive_slots))
        self._vectors = [self._vectors[s] for s in alive_slots]
        self._slot_of = {tid: remap[s] for tid, s in self._slot_of.items()}
        self._df = [0] * len(self._terms)
        self._post_slots = [array("i") for _ in self._terms]
        self._post_weights = [array("f") for _ in self._terms]
        for slot, vec in enumerate(self._vectors):
            assert vec is not None
            for tid, w in zip(vec[0], vec[1], strict=True):
                self._df[tid] += 1
                self._post_slots[tid].append(slot)
                self._post_weights[tid].append(w)
        self._dead = 0

    # -- search -------------------------------------------------------------------------------------------
    def _scores(self, term_ids: list[int], weights: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(self._ids), dtype=np.float32)
        n_live = max(len(self._slot_of), 1)
        cap = max(self.max_df * n_live, 50)
        for tid, qw in zip(term_ids, weights.tolist(), strict=True):
            posting = self._post_slots[tid]
            if not posting or len(posting) > cap:
                continue
            slots = np.frombuffer(posting, dtype=np.int32)
            scores[slots] += qw * np.frombuffer(self._post_weights[tid], dtype=np.float32)
        return scores

    def query(
        self,
        text: str,
        place_code: str | None = None,
        at: datetime | None = None,
        k: int = 5,
        min_score: float = 0.4,
        exclude: TicketId | None = None,
    ) -> list[Duplicate]:
        """Up to ``k`` indexed tickets that look like the same incident, best first.

        Candidates must be within ``window`` of ``at`` (when given), at a compatible place, and score at least
        ``min_score`` (cosine similarity of the kept terms, 0..1).
        """
        with self._lock:
            if not self._slot_of:
                return []
            term_ids, weights = self._vector(self._tokens(text), create=False)
            if not term_ids:
                return []
            scores = self._scores(term_ids, weights)
            candidates = np.nonzero(scores >= min_score)[0]
            if candidates.size == 0:
                return []
            order = candidates[np.argsort(-scores[candidates], kind="stable")]
            out: list[Duplicate] = []
            t = at.timestamp() if at is not None else None
            span = self.window.total_seconds()
            for slot in order.tolist():
                ticket_id = self._ids[slot]
                if ticket_id is None or ticket_id == exclude:
                    continue
                if t is not None and abs(self._at[slot] - t) > span:
                    continue
                if not self.same_place(place_code, self._places[slot]):
                    continue
                out.append(Duplicate(ticket_id, round(min(float(scores[slot]), 1.0), 4)))
                if len(out) >= k:
                    break
            return out

    def hot_spots(
        self,
        min_size: int = 3,
        min_score: float = 0.35,
        at: datetime | None = None,
        *,
        require_place: bool = True,
    ) -> list[HotSpot]:
        """Clusters of at least ``min_size`` similar tickets at one place within the window ending at ``at``.

        Linking is single-link over pairs scoring >= ``min_score``; tickets without a place only join when
        ``require_place`` is False. Biggest clusters first.
        """
        with self._lock:
            if not self._slot_of:
                return []
            t_end = at.timestamp() if at is not None else max(self._at[s] for s in self._slot_of.values())
            t_start = t_end - self.window.total_seconds()
            slots = [
                s
                for s in self._slot_of.values()
                if t_start <= self._at[s] <= t_end and (self._places[s] is not None or not require_place)
            ]
            parent = {s: s for s in slots}

            def find(s: int) -> int:
                while parent[s] != s:
                    parent[s] = parent[parent[s]]
                    s = parent[s]
                return s

            for s in slots:
                vec = self._vectors[s]
                assert vec is not None
                scores = self._scores(list(vec[0]), np.frombuffer(vec[1], dtype=np.float32))
                for other in np.nonzero(scores >= min_score)[0].tolist():
                    if other == s or other not in parent:
                        continue
                    if self._places[s] != self._places[other]:
                        continue
                    ra, rb = find(s), find(other)
                    if ra != rb:
                        parent[ra] = rb
            groups: dict[int, list[int]] = {}
            for s in slots:
                groups.setdefault(find(s), []).append(s)
            spots: list[HotSpot] = []
            for members in groups.values():
                if len(members) < min_size:
                    continue
                members.sort(key=lambda s: self._at[s])
                weight: Counter[int] = Counter()
                for s in members:
                    vec = self._vectors[s]
                    assert vec is not None
                    for tid, w in zip(vec[0], vec[1], strict=True):
                        weight[tid] += w
                spots.append(
                    HotSpot(
                        place_code=self._places[members[0]],
                        ticket_ids=[self._ids[s] for s in members],
                        first_at=self._dt[members[0]],
                        last_at=self._dt[members[-1]],
                        top_terms=[self._terms[tid] for tid, _ in weight.most_common(5)],
                    )
                )
            spots.sort(key=lambda h: (-h.size, h.first_at))
            return spots

    def add_many(self, items: Iterable[tuple[TicketId, str, str | None, datetime]]) -> None:
        for ticket_id, text, place, at in items:
            self.add(ticket_id, text, place, at)
