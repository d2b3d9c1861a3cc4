"""Statistical disclosure control: primary and secondary cell suppression, optional rounding.

The model. Every figure a report shows is a *cell*: the number of units (persons, cases,
decisions ...) in a population described by a *predicate*, a conjunction of "dimension in
{values}" constraints over the dimensions of one source's cube (``state``, ``nationality``,
``sex``, ``age_band`` ...). A row total, a column total and the grand total are cells too. Two
tables that show the same population show the same cell, whatever they are called: the
predicate's canonical key is the cell's identity across tables and reports.

Primary suppression hides every cell below the threshold (zero included). Secondary
suppression then makes sure no hidden cell can be worked out from the published ones — in
this table, in the other tables of this report, and in every cell already decided for the same
source and period (the *ledger*, see ``rso.reporting.models.LedgerCell``), which an attacker
may hold too. The test is exact:

* the unknowns are the counts of the *classes*, the finest cells the published predicates can
  tell apart (per dimension, values no predicate separates are merged);
* the attacker knows every published cell (a linear equation over the classes) and that counts
  are never negative;
* a hidden cell is *recoverable* when its value is the same for every non-negative solution.
  With ``F`` the classes forced to zero by the published figures (found with one linear
  programme), the remaining solutions contain a strictly positive point, so a hidden cell is
  constant exactly when its vector, restricted to the other classes, lies in the row space of
  the published cells (a least-squares residual of zero).

While a hidden cell is recoverable, one more cell of the new tables is hidden — preferably a
cell used in the derivation and on the same row or column, then the smallest. Cells decided
earlier are never changed (what was published stays published, what was hidden stays
hidden): if only they could protect a cell, :class:`Undecidable` is raised and nothing is
published. Each suppressed cell ends with a range of possible values wider than zero; the
tests check that with a linear programme per cell.

Rounding (optional, to a base such as 5) applies afterwards to the published values only.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: (dimension, sorted values) pairs, sorted by dimension; an absent dimension is unconstrained
Predicate = tuple[tuple[str, tuple[str, ...]], ...]

_RESIDUAL_TOL = 1e-7
_WEIGHT_TOL = 1e-7


class Undecidable(Exception):  # noqa: N818  (a condition, not a bug)
    """Cells would be recoverable whatever the new tables hide (earlier decisions fix them)."""

    def __init__(self, keys: list[str]):
        super().__init__(f"{len(keys)} hidden cell(s) recoverable from figures already decided")
        self.keys = keys


class SnapshotMismatch(Exception):  # noqa: N818
    """A ledger cell no longer matches the frozen figures it was decided on (a bug)."""


def make_predicate(constraints: Mapping[str, Iterable[str] | None], domains: Mapping[str, Sequence[str]]) -> Predicate:
    """Canonical predicate: values outside the dimension's domain dropped (nobody holds them),
    a constraint covering the whole domain dropped (it constrains nothing)."""
    items = []
    for dim, values in constraints.items():
        if values is None:
            continue
        domain = domains[dim]
        chosen = frozenset(values) & frozenset(domain)
        if chosen == frozenset(domain):
            continue
        items.append((dim, tuple(sorted(chosen))))
    return tuple(sorted(items))


def predicate_key(p: Predicate) -> str:
    return ";".join(f"{dim}={'|'.join(values)}" for dim, values in p) or "*"


def predicate_to_json(p: Predicate) -> dict[str, list[str]]:
    return {dim: list(values) for dim, values in p}


def predicate_from_json(data: Mapping[str, Sequence[str]]) -> Predicate:
    return tuple(sorted((dim, tuple(sorted(values))) for dim, values in data.items()))


def round_to(value: int, base: int) -> int:
    """Round half up to a multiple of ``base`` (no rounding for base 0 or 1)."""
    if base <= 1:
        return value
    return base * ((value + base // 2) // base)


@dataclass
class Cell:
    """One figure of a table about to be published, and where it sits in the additive grids.

    A *grid* is an additive structure (scope × rows × columns, each axis with its total at
    index 0): every cell at a non-zero index adds up to the cell at index 0 along that axis.
    """

    key: str
    predicate: Predicate
    #: how many of its coordinates are totals (0 interior, 1 row/column total, 2+ grand totals):
    #: interior cells are hidden first
    level: int = 0
    #: (grid id, coordinates) of each place the cell appears
    coords: set[tuple[str, tuple[int, ...]]] = field(default_factory=set)
    #: never published (e.g. the persons of States too small for a report of their own, which
    #: the regional figures include): always hidden, and protected when it holds anyone
    shadow: bool = False


@dataclass(frozen=True)
class Fixed:
    """A cell decided earlier for the same source and period (from the ledger)."""

    predicate: Predicate
    value: int
    suppressed: bool
    shadow: bool = False


@dataclass(frozen=True)
class Decision:
    value: int
    suppressed: bool
    #: "primary" (below the threshold), "secondary" (hidden to protect another), "published",
    #: "shadow" (never shown), or "ledger" (decided by an earlier report of the same period)
    reason: str


class Classes:
    """The classes (finest distinguishable cells) of a cube for a set of predicates."""

    def __init__(self, dims: Sequence[str], domains: Mapping[str, Sequence[str]],
                 predicates: Iterable[Predicate]):
        self.dims = tuple(dims)
        preds = list(predicates)
        self.atoms: dict[str, list[tuple[str, ...]]] = {}
        self.atom_of: dict[str, dict[str, int]] = {}
        for dim in self.dims:
            sets = sorted({frozenset(values) for p in preds for d, values in p if d == dim}, key=sorted)
            groups: dict[tuple[bool, ...], list[str]] = {}
            for value in domains[dim]:
                groups.setdefault(tuple(value in s for s in sets), []).append(value)
            atoms = [tuple(vs) for _sig, vs in sorted(groups.items(), key=lambda kv: kv[1][0])]
            self.atoms[dim] = atoms
            self.atom_of[dim] = {v: i for i, vs in enumerate(atoms) for v in vs}
        self.sizes = [len(self.atoms[d]) for d in self.dims]
        self.n = int(np.prod(self.sizes)) if self.sizes else 1

    def row(self, p: Predicate) -> np.ndarray:
        """The 0/1 vector of the classes inside predicate ``p``."""
        constraints = dict(p)
        vec = np.ones(1, dtype=bool)
        for dim, size in zip(self.dims, self.sizes, strict=True):
            member = np.zeros(size, dtype=bool)
            if dim in constraints:
                for v in constraints[dim]:
                    member[self.atom_of[dim][v]] = True
            else:
                member[:] = True
            vec = np.outer(vec, member).ravel()
        return vec

    def counts(self, cube: Mapping[tuple, int]) -> np.ndarray:
        """Class counts from a cube keyed by value tuples in ``dims`` order."""
        out = np.zeros(self.n, dtype=np.int64)
        for key, count in cube.items():
            index = 0
            for dim, size, value in zip(self.dims, self.sizes, key, strict=True):
                index = index * size + self.atom_of[dim][value]
            out[index] += count
        return out


def _forced_zero(a: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Classes every non-negative solution of ``a @ x = a @ x0`` holds at zero (boolean mask).

    Only classes at zero in the true data can be forced. Class j can be positive iff a direction
    ``d`` exists with ``a @ d = 0``, ``d >= 0`` on the zero classes and ``d_j > 0``; one linear
    programme maximises the number of such classes at once (a cone: sums of directions are
    directions, so the optimum reaches every class that can be positive).
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, hstack

    n = a.shape[1]
    forced = np.zeros(n, dtype=bool)
    zero = (x0 == 0) & a.any(axis=0)  # a class in no published cell is free
    zeros = np.flatnonzero(zero)
    if zeros.size == 0 or a.shape[0] == 0:
        return forced
    k = zeros.size
    a_eq = hstack([csr_matrix(a.astype(float)), csr_matrix((a.shape[0], k))]).tocsr()
    rows = np.arange(k)
    a_ub = hstack([csr_matrix((-np.ones(k), (rows, zeros)), shape=(k, n)),
                   csr_matrix((np.ones(k), (rows, rows)), shape=(k, k))]).tocsr()
    bounds = [(0, None) if zero[j] else (None, None) for j in range(n)] + [(0, 1)] * k
    objective = np.concatenate([np.zeros(n), -np.ones(k)])
    res = linprog(objective, A_ub=a_ub, b_ub=np.zeros(k), A_eq=a_eq, b_eq=np.zeros(a.shape[0]),
                  bounds=bounds, method="highs")
    if res.status != 0:  # be conservative: treat every zero class as known
        forced[zeros] = True
        return forced
    forced[zeros[res.x[n:] < 0.5]] = True
    return forced


def recoverable(published: np.ndarray, hidden: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which hidden cells (rows of ``hidden``) the published cells (rows of ``published``) pin
    down: ``(pinned mask over hidden rows, weights published × hidden)``. The weights give one
    derivation of each pinned cell (zero where forced zeros alone pin it)."""
    from scipy.linalg import qr, solve_triangular

    m, k = published.shape[0], hidden.shape[0]
    weights = np.zeros((m, k))
    determined = np.zeros(k, dtype=bool)
    if k == 0 or m == 0:
        return determined, weights
    forced = _forced_zero(published, x0)
    keep = ~forced
    pub = published[:, keep].astype(float)
    hid = hidden[:, keep].astype(float)
    cols = pub.any(axis=0)
    nothing_left = ~hid.any(axis=1)  # only forced zeros: pinned at zero
    # a class no published cell covers is free: a hidden cell holding one is never pinned
    free = (hid[:, ~cols] > 0).any(axis=1)
    pub, rhs = pub[:, cols], hid[:, cols]
    # row space of the published cells: QR with column pivoting of their transpose
    q, r, perm = qr(pub.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > _RESIDUAL_TOL * max(1.0, diag[0] if diag.size else 0.0)).sum())
    q_r = q[:, :rank]
    coords = q_r.T @ rhs.T
    resid = np.linalg.norm(rhs.T - q_r @ coords, axis=0)
    scale = np.maximum(1.0, np.linalg.norm(rhs, axis=1))
    determined = nothing_left | (~free & (resid <= _RESIDUAL_TOL * 10 * scale))
    if rank:
        w = solve_triangular(r[:rank, :rank], coords, lower=False)
        weights[perm[:rank]] = w
    weights[:, ~determined | nothing_left] = 0.0
    return determined, weights


class Protector:
    """Decides which cells of new tables to publish, given a cube and the ledger."""

    def __init__(self, dims: Sequence[str], domains: Mapping[str, Sequence[str]], cube: Mapping[tuple, int],
                 threshold: int):
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.dims = tuple(dims)
        self.domains = {d: list(domains[d]) for d in self.dims}
        self.cube = cube
        self.threshold = threshold

    def protect(self, cells: Iterable[Cell], grids: Mapping[str, tuple[int, ...]] | None = None,
                fixed: Mapping[str, Fixed] | None = None, progress=None) -> dict[str, Decision]:
        """Decisions for every new cell (by key); cells already in ``fixed`` keep theirs.

        ``grids`` gives each grid's shape (see :class:`Cell`). Raises :class:`Undecidable` when
        cells decided earlier leave a hidden cell recoverable whatever is hidden now."""
        fixed = dict(fixed or {})
        grids = dict(grids or {})
        new: dict[str, Cell] = {}
        for c in cells:
            if c.key in new:
                new[c.key].coords |= c.coords
                new[c.key].level = min(new[c.key].level, c.level)
                new[c.key].shadow = new[c.key].shadow and c.shadow
            else:
                new[c.key] = Cell(c.key, c.predicate, c.level, set(c.coords), c.shadow)
        if all(k in fixed for k in new):
            # nothing new: these cells were audited, with everything else decided, when decided
            return {k: Decision(fixed[k].value, fixed[k].suppressed, "ledger") for k in new}
        keys = sorted(set(new) | set(fixed))
        preds = {k: (fixed[k].predicate if k in fixed else new[k].predicate) for k in keys}
        classes = Classes(self.dims, self.domains, preds.values())
        x0 = classes.counts(self.cube)
        matrix = np.array([classes.row(preds[k]) for k in keys], dtype=bool).reshape(len(keys), classes.n)
        values = (matrix.astype(np.int64) @ x0) if keys else np.zeros(0, dtype=np.int64)
        self._index = {k: i for i, k in enumerate(keys)}
        self._values = values
        for k, f in fixed.items():
            if int(values[self._index[k]]) != f.value:
                raise SnapshotMismatch(k)
        suppressed = {k: (fixed[k].suppressed if k in fixed
                          else new[k].shadow or int(values[self._index[k]]) < self.threshold) for k in keys}
        reason = {k: ("ledger" if k in fixed else ("shadow" if new[k].shadow else
                                                   ("primary" if suppressed[k] else "published"))) for k in keys}
        #: hidden cells that need no protection: never shown, and nobody in them
        self._exempt = {k for k in keys if int(values[self._index[k]]) == 0
                        and (fixed[k].shadow if k in fixed else new[k].shadow)}
        self._hypercubes(new, grids, fixed, suppressed, reason)
        self._audit_and_fix(keys, new, fixed, matrix, x0, suppressed, reason, progress)
        return {k: Decision(int(values[self._index[k]]), suppressed[k], reason[k]) for k in new}

    # ---------------------------------------------------------------- hypercube pre-pass
    def _hypercubes(self, new, grids, fixed, suppressed, reason) -> None:
        """For each hidden cell, hide the cheapest box of cells around it in each of its grids
        (2×2 in a table, 2×2×2 across scopes) along which its value can move either way: the
        classic hypercube method. The exact audit afterwards catches what boxes miss."""
        layout: dict[str, dict[tuple[int, ...], str]] = {g: {} for g in grids}
        where: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for key, cell in new.items():
            for gid, coord in cell.coords:
                if gid in layout:
                    layout[gid].setdefault(coord, key)
                    where.setdefault(key, []).append((gid, coord))
        arrays = {}
        for gid, shape in grids.items():
            keys = np.full(shape, "", dtype=object)
            for coord, key in layout[gid].items():
                keys[coord] = key
            if (keys == "").any():
                continue  # an incomplete grid: leave it to the exact audit
            flat = keys.ravel()
            arrays[gid] = (
                keys,
                np.array([int(self._values[self._index[k]]) for k in flat]).reshape(shape),
                np.array([(k in fixed and not fixed[k].suppressed) or k not in new for k in flat]).reshape(shape),
                np.array([new[k].level if k in new else 3 for k in flat]).reshape(shape),
            )
        queue = [(gid, coord, key) for key in sorted(new) if suppressed[key] and key not in self._exempt
                 for gid, coord in where.get(key, []) if gid in arrays]
        boxed: set[tuple[str, str]] = set()
        while queue:
            gid, coord, key = queue.pop(0)
            if (gid, key) in boxed:
                continue
            corners = self._best_box(*arrays[gid], coord, suppressed)
            if corners is None:
                continue
            for corner in corners:
                boxed.add((gid, corner))
                if not suppressed[corner]:
                    suppressed[corner] = True
                    reason[corner] = "secondary"
                    queue.extend((g, c, corner) for g, c in where.get(corner, []) if g in arrays and g != gid)

    @staticmethod
    def _best_box(keys: np.ndarray, val: np.ndarray, locked: np.ndarray, level: np.ndarray, coord: tuple[int, ...],
                  suppressed) -> list[str] | None:
        import itertools

        hid = np.array([suppressed[k] for k in keys.ravel()]).reshape(keys.shape)
        varying = [ax for ax in range(keys.ndim) if keys.shape[ax] > 1]
        if not varying:
            return None
        alts = {ax: np.array([i for i in range(keys.shape[ax]) if i != coord[ax]]) for ax in varying}
        shape = tuple(len(alts[ax]) for ax in varying)
        cost = np.zeros(shape)
        bad = np.zeros(shape, dtype=bool)
        up_ok = np.ones(shape, dtype=bool)
        down_ok = np.ones(shape, dtype=bool)
        for pattern in itertools.product((0, 1), repeat=len(varying)):
            index = []
            sign = np.ones(shape)
            for ax in range(keys.ndim):
                if ax not in varying:
                    index.append(np.array([coord[ax]]))
                    continue
                pos = varying.index(ax)
                if pattern[pos] == 0:
                    index.append(np.array([coord[ax]]))
                    continue
                index.append(alts[ax])
                # moving along an axis: a total moves with its part, two parts move apart
                along = np.where((alts[ax] == 0) | (coord[ax] == 0), 1.0, -1.0)
                sign = sign * along.reshape([-1 if i == pos else 1 for i in range(len(varying))])
            sub = np.ix_(*index)

            def part(a, sub=sub):
                got = a[sub]
                return np.broadcast_to(got.reshape([got.shape[ax] for ax in varying]), shape)

            v, h, lk, lv = part(val), part(hid), part(locked), part(level)
            if any(pattern):
                # totals are worth more to readers: a grand total costs 64 times its value
                cost = cost + np.where(h, 0.0, v * 4.0 ** lv + 0.5)
                # a box never hides the regional grand total: the exact audit decides if it must go
                bad |= (lk | (lv >= 3)) & ~h
            up_ok &= np.where(sign < 0, v > 0, True)
            down_ok &= np.where(sign > 0, v > 0, True)
        valid = ~bad & (up_ok | down_ok)
        if not valid.any():
            return None
        best = np.unravel_index(np.argmin(np.where(valid, cost, np.inf)), shape)
        chosen = []
        for pattern in itertools.product((0, 1), repeat=len(varying)):
            c = list(coord)
            for pos, ax in enumerate(varying):
                if pattern[pos]:
                    c[ax] = int(alts[ax][best[pos]])
            chosen.append(keys[tuple(c)])
        if len(set(chosen)) < len(chosen):
            return None
        return chosen

    # ---------------------------------------------------------------- exact audit
    def _audit_and_fix(self, keys, new, fixed, matrix, x0, suppressed, reason, progress) -> None:
        rounds = 0
        while True:
            rounds += 1
            pub_keys = [k for k in keys if not suppressed[k]]
            hid_keys = [k for k in keys if suppressed[k] and k not in self._exempt]
            pub_idx = [self._index[k] for k in pub_keys]
            hid_idx = [self._index[k] for k in hid_keys]
            determined, weights = recoverable(matrix[pub_idx], matrix[hid_idx], x0)
            if progress is not None:
                progress(rounds, int(determined.sum()))
            pinned = np.flatnonzero(determined)
            if pinned.size == 0:
                return
            chosen: set[str] = set()
            stuck = []
            # one complement per pinned cell, unless a complement chosen this round already lies on
            # one of its lines (it probably frees it too: the next round checks)
            for i in sorted(pinned, key=lambda i: (int(self._values[self._index[hid_keys[i]]]), hid_keys[i])):
                target = hid_keys[i]
                if any(self._inline(new, target, k) for k in chosen):
                    continue
                pick = self._complement(target, new, pub_keys, weights[:, i], matrix, fixed)
                if pick is None:
                    stuck.append(target)
                else:
                    chosen.add(pick)
            if stuck and not chosen:
                raise Undecidable(sorted(stuck))
            for k in chosen:
                suppressed[k] = True
                reason[k] = "secondary"

    @staticmethod
    def _inline(new, a: str, b: str) -> bool:
        """Whether two cells lie on one line (same grid, coordinates differing on one axis)."""
        if a not in new or b not in new:
            return False
        for ga, ca in new[a].coords:
            for gb, cb in new[b].coords:
                if ga == gb and sum(x != y for x, y in zip(ca, cb, strict=True)) == 1:
                    return True
        return False

    def _complement(self, target: str, new, pub_keys: list[str], weight: np.ndarray, matrix: np.ndarray,
                    fixed) -> str | None:
        """The published new cell to hide so that ``target`` is no longer pinned down."""
        open_keys = [k for k in pub_keys if k in new and k not in fixed]
        if not open_keys:
            return None
        used = {pub_keys[j] for j in np.flatnonzero(np.abs(weight) > _WEIGHT_TOL)} & set(open_keys)
        inline = {k for k in open_keys if self._inline(new, target, k)}
        row = matrix[self._index[target]]
        overlap = {k for k in open_keys if (matrix[self._index[k]] & row).any()}
        for pool in (used & inline, inline, used, overlap):
            if pool:
                return min(pool, key=lambda k: (new[k].level, int(self._values[self._index[k]]), k))
        return None
