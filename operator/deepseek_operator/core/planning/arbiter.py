"""One cluster-wide decision: how each scarce pool's devices are split among the deployments.

Planned alone, each DeepSeekDeployment takes the cheapest placement among whatever capacity it
happens to see free, so when several want the same A100s the winner is whoever reconciles
first, the fleet's total cost is not minimal, and the result may flap. The arbiter decides the
split for all of them at once, as a pure function of numbers every operator can observe the
same way:

* ``pools``: per pool, the units free for DeepSeekDeployments (a gpu pool counts GPUs, a cpu
  pool CPU millicores): what is free plus what the arbitrated deployments' own pods hold there;
* one ``Claim`` per deployment: its priority, the capacity it needs (demand × (1 + headroom),
  as the planner computes it), its replica bounds, and per allowed pool an option (cost per
  replica-hour as its planner weighs it, tokens/s per replica, units per replica, and how many
  replicas the pool's nodes could hold for it if every arbitrated unit were free).

It solves one integer programme (HiGHS through ``scipy.optimize.milp``; to optimality up to a
hundred contending deployments, within 0.1 % of it beyond) over x[d, p], the
replicas of deployment d on pool p: minimise Σ cost·x plus a penalty for every token/s and every
replica.min left unserved, subject to each pool's units and each deployment's bounds. The penalty
is a thousand times the dearest price per token/s (per replica) on offer, so serving always wins
over saving, and a deployment that loses a scarce pool falls back to its next-best one: the
objective counts exactly that fallback's extra cost. Within a tier the optimum is joint.

Priorities are lexicographic (preemptive): each tier's objective is minimised subject to every
higher tier keeping what it was given (its optimum, within a rounding tolerance), and no further.
A higher tier is therefore never worse off for a lower one, but among its equally good
placements it takes one that leaves room for the lower tiers: after the highest tier is solved,
the next tier's programme holds the higher deployments' columns again, with a row per higher
tier bounding its objective, and minimises the lower tier's objective, and then (at a weight of
`_STAY_WEIGHT`) the higher deployments' replicas it moves. Only the higher deployments linked to
the tier through shared pools take part; and when each deployment's own optimum fits beside the
higher tiers' placements, no programme is solved at all (the usual case: no pool is contended).

The placements in force are kept while they still fit beside the higher tiers' placements and
serve every deployment of the tier, and the new optimum would save at most `KEEP_FRACTION` of
their cost, so a small change of demand does not swap two deployments back and forth. A tier
kept so is bounded by its held objective: a lower tier may still move it to a placement no worse
for it, as few replicas as it can (it never moves for its own small saving, nor for a lower tier
whose own placement in force holds). The input order does not matter (claims and pools are
sorted by key), so two operators computing it from the same state get the same answer.

The result per deployment (`Allotment`): the arbiter's placement, the per-pool replica caps its
own planner then plans within (its placement plus its share of whatever no one was given), its
preference (the placement it would get alone), and, when it got less than that, which
deployments took the capacity it wanted.

``sequential`` is the baseline: deployments placed one by one in a fixed order, each taking its
own optimum from what is left (what per-deployment planning does, in reconcile order). The
property tests check the arbiter against it and against brute force.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from deepseek_operator.core.planning.constraint_rows import ConstraintRows
from deepseek_operator.core.planning.solver import PoolTerms, solve_min_cost

PENALTY_FACTOR = 1000.0
"""Unserved demand costs this many times the dearest price per token/s (per replica) on offer."""
KEEP_FRACTION = 0.05
"""The placements in force are kept while they fit, serve every deployment of the tier, and cost
at most this much more than the new optimum (a fleet-wide counterpart of minSavingsPercent)."""
EXACT_COLUMNS = 300
"""Up to this many integer columns (a hundred contending deployments) the joint programme is
solved to optimality; beyond, to within `LARGE_GAP` of it: for a thousand contending
deployments HiGHS takes about 2 s for 0.1 %, 6 s for 0.01 %, and the difference is not worth a
move."""
LARGE_GAP = 1e-3
NODE_LIMIT = 20_000
"""HiGHS stops after this many branch-and-bound nodes and keeps its best answer: a limit in work,
not time, so that two operators on different machines still reach the same answer."""
TIME_LIMIT_SECONDS = 60.0
"""A safety net only: `NODE_LIMIT` is what bounds the solve."""
_TOLERANCE = 1e-9
_HOLD_RELATIVE = 1e-9
_HOLD_ABSOLUTE = 1e-6
"""A decided tier's objective may grow by this much (relative, absolute) when a lower tier
rearranges it: room for HiGHS's own tolerances, far below any price difference."""
_STAY_WEIGHT = 1e-6
"""In a lower tier's programme, the higher deployments' replicas left where they are earn at most
this fraction of the tier's cheapest price, all together: it chooses among the tier's optima the
one that moves the fewest of them, and never trades against the tier's own objective."""


class ArbiterError(ValueError):
    """A claim the arbiter cannot use as given (repeated keys or pools, negative figures)."""


@dataclass(frozen=True)
class ClaimOption:
    """One pool a deployment may use now, as plain numbers."""

    pool: str
    cost: float
    """Cost per replica-hour as the deployment's planner weighs it (prefer* policies included)."""
    tokens_per_second: float
    units: int
    """Pool units one replica holds (GPUs on a gpu pool, CPU millicores on a cpu pool)."""
    upper: int
    """Most replicas the pool's nodes could hold for it with every arbitrated unit free."""

    def __post_init__(self) -> None:
        for name in ("cost", "tokens_per_second"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ArbiterError(f"{self.pool}.{name} must be finite and ≥ 0, got {value}")
        if self.units < 1 or self.upper < 0:
            raise ArbiterError(f"{self.pool}: units must be ≥ 1 and upper ≥ 0")


@dataclass(frozen=True)
class Claim:
    """What one deployment asks of the fleet."""

    key: str
    """``namespace/name``: the stable key that orders everything."""
    options: tuple[ClaimOption, ...]
    required: float = 0.0
    """Tokens/s its placement must serve (demand × (1 + headroom))."""
    min_replicas: int = 0
    max_replicas: int = 1000
    priority: int = 0
    current: tuple[tuple[str, int], ...] = ()
    """(pool, replicas) of the placement in force: kept while it still fits and serves, unless
    a new split saves more than `KEEP_FRACTION` (no flapping between near-equal splits)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.required) or self.required < 0:
            raise ArbiterError(f"{self.key}: required must be finite and ≥ 0")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ArbiterError(f"{self.key}: need 0 ≤ min_replicas ≤ max_replicas")
        pools = [o.pool for o in self.options]
        if len(set(pools)) != len(pools):
            raise ArbiterError(f"{self.key}: a pool appears twice among its options")

    def option(self, pool: str) -> ClaimOption | None:
        return next((o for o in self.options if o.pool == pool), None)


@dataclass(frozen=True)
class Allotment:
    """One deployment's share of the fleet decision."""

    key: str
    priority: int
    replicas: Mapping[str, int]
    """The arbiter's placement."""
    caps: Mapping[str, int]
    """Replicas the deployment's planner may place per pool: its placement plus as many as fit
    into the units no one was given (every pool among its options appears)."""
    preferred: Mapping[str, int]
    """Its placement had it the arbitrated units to itself."""
    cost: float
    preferred_cost: float
    shortfall: float
    """Tokens/s of its required capacity left unserved (0 when it is served)."""
    displaced_by: tuple[str, ...] = ()
    """Deployments holding capacity on the pools it wanted more of, when its placement is worse
    than its preference."""
    lost_pools: tuple[str, ...] = ()
    """Pools where it got fewer replicas than it would alone."""
    displacing: tuple[str, ...] = ()
    """Deployments placed below their preference because this one holds capacity they wanted."""

    @property
    def displaced(self) -> bool:
        return bool(self.displaced_by)


@dataclass(frozen=True)
class Arbitration:
    allotments: Mapping[str, Allotment]
    pools: Mapping[str, int]
    """Units per pool the decision split."""
    leftover: Mapping[str, int]
    """Units per pool no one was given."""
    cost: float
    """Σ cost of every placement."""
    shortfall: float
    """Σ tokens/s unserved."""
    exact: bool = True
    """False when HiGHS stopped at its node limit (its best answer so far is used)."""

    def get(self, key: str) -> Allotment | None:
        return self.allotments.get(key)


EMPTY = Arbitration(allotments={}, pools={}, leftover={}, cost=0.0, shortfall=0.0)


@dataclass(frozen=True)
class _Penalties:
    per_token: float
    per_replica: float

    @staticmethod
    def of(claims: Iterable[Claim]) -> _Penalties:
        ratios = [
            o.cost / o.tokens_per_second
            for c in claims
            for o in c.options
            if o.tokens_per_second > 0
        ]
        prices = [o.cost for c in claims for o in c.options]
        return _Penalties(
            per_token=PENALTY_FACTOR * max(ratios, default=1.0) + 1.0,
            per_replica=PENALTY_FACTOR * max(prices, default=1.0) + 1.0,
        )


@dataclass
class _Solution:
    replicas: dict[str, dict[str, int]] = field(default_factory=dict)
    exact: bool = True


def arbitrate(pools: Mapping[str, int], claims: Sequence[Claim]) -> Arbitration:
    """Split ``pools`` (units per pool) among ``claims``; see the module docstring."""
    ordered = _checked(claims)
    penalties = _Penalties.of(ordered)
    units = {p: max(0, int(n)) for p, n in sorted(pools.items())}
    placed: dict[str, dict[str, int]] = {}
    decided: list[_Tier] = []
    exact = True
    for priority in sorted({c.priority for c in ordered}, reverse=True):
        tier = [c for c in ordered if c.priority == priority]
        higher = [c for t in decided for c in t.claims]
        # Each deployment's own optimum with every unit free to it is a lower bound on the
        # tier's; when they all fit beside the higher tiers' placements they are the tier's
        # optimum, without the joint programme (the usual case: no pool is contended).
        alone = {c.key: _alone(c, units, penalties) for c in tier}
        if _fits([*higher, *tier], {**placed, **alone}, units):
            chosen, tier_exact = {**placed, **alone}, True
        else:
            chosen, tier_exact = _rearranged(tier, decided, placed, units, penalties)
        exact = exact and tier_exact
        best = _objective_of(tier, chosen, penalties)
        # The tier's placements in force, beside the higher tiers' as they were: kept against a
        # small saving of its own, so neither it nor a higher tier moves for one.
        kept = _in_force(tier, _left(units, higher, placed))
        if kept is not None:
            holding = _objective_of(tier, kept, penalties)
            if holding <= best * (1 + KEEP_FRACTION) + _TOLERANCE:
                chosen, best = {**placed, **kept}, holding
        placed = chosen
        decided.append(_Tier(tuple(tier), best * (1 + _HOLD_RELATIVE) + _HOLD_ABSOLUTE))
    remaining = _left(units, ordered, placed)
    solution = _Solution(replicas={c.key: placed[c.key] for c in ordered}, exact=exact)
    return _report(pools, ordered, solution, remaining, penalties)


@dataclass(frozen=True)
class _Tier:
    """A tier already decided: its deployments, and the most their objective may reach when a
    lower tier rearranges them (what the tier was given, its optimum or the objective of its
    placements in force, within a rounding tolerance)."""

    claims: tuple[Claim, ...]
    bound: float


def _rearranged(
    tier: Sequence[Claim],
    decided: Sequence[_Tier],
    placed: Mapping[str, dict[str, int]],
    units: Mapping[str, int],
    penalties: _Penalties,
) -> tuple[dict[str, dict[str, int]], bool]:
    """The tier's optimum when the higher tiers may move among placements no worse for them.

    Only the higher deployments linked to the tier through shared pools (directly or through a
    chain of others) can make room for it; they take part with their tier's bound, the rest
    keep their placements."""
    touched = {o.pool for c in tier for o in c.options}
    rest = [c for t in decided for c in t.claims]
    movable: set[str] = set()
    grew = True
    while grew:
        grew = False
        for claim in rest:
            pools = {o.pool for o in claim.options}
            if claim.key not in movable and pools & touched:
                movable.add(claim.key)
                touched |= pools
                grew = True
    room = _left(units, [c for c in rest if c.key not in movable], placed)
    held: list[tuple[list[Claim], float]] = []
    for decided_tier in decided:
        moving = [c for c in decided_tier.claims if c.key in movable]
        still = [c for c in decided_tier.claims if c.key not in movable]
        staying = _objective_of(still, placed, penalties)
        if moving:
            held.append((moving, decided_tier.bound - staying))
    if held:
        found = _programme(tier, room, penalties, held, placed)
        if found is not None:
            moved, exact = found
            within = all(
                _objective_of(claims, moved, penalties) <= bound + _TOLERANCE * max(1.0, abs(bound))
                for claims, bound in held
            )
            if within:
                return {**placed, **moved}, exact
    # No higher deployment can make room, or no answer, or one that a rounding made worse for a
    # higher tier: the higher tiers stay, the tier gets what they leave.
    alone, exact = _solve(tier, _left(units, rest, placed), penalties)
    return {**placed, **alone}, exact and not held


def _in_force(
    tier: Sequence[Claim], remaining: Mapping[str, int]
) -> dict[str, dict[str, int]] | None:
    """The tier's placements in force, when they still fit ``remaining`` and serve each of its
    deployments in full (its capacity, within its bounds, on pools it may use now)."""
    kept: dict[str, dict[str, int]] = {}
    for claim in tier:
        mine = {}
        for pool, count in claim.current:
            option = claim.option(pool)
            if count <= 0:
                continue
            if option is None or count > option.upper:
                return None
            mine[pool] = count
        total = sum(mine.values())
        if not claim.min_replicas <= total <= claim.max_replicas or shortfall(claim, mine) > 0:
            return None
        kept[claim.key] = mine
    return kept if _fits(tier, kept, remaining) else None


def sequential(
    pools: Mapping[str, int], claims: Sequence[Claim], order: Sequence[str] | None = None
) -> Arbitration:
    """The baseline: each deployment in ``order`` (default: the claims' order) takes its own
    optimum from what the ones before it left (per-deployment planning in reconcile order)."""
    by_key = {c.key: c for c in _checked(claims)}
    keys = list(order) if order is not None else [c.key for c in claims]
    penalties = _Penalties.of(by_key.values())
    remaining = {p: max(0, int(n)) for p, n in sorted(pools.items())}
    solution = _Solution()
    for key in keys:
        claim = by_key[key]
        placed, exact = _solve([claim], remaining, penalties)
        solution.exact = solution.exact and exact
        solution.replicas[key] = placed[key]
        _take(remaining, claim, placed[key])
    return _report(pools, list(by_key.values()), solution, remaining, penalties)


def objective(
    claim: Claim, replicas: Mapping[str, int], penalties: _Penalties | None = None
) -> float:
    """What the arbiter minimises for one deployment: cost, plus the penalties for what it
    leaves unserved (``penalties`` default: from this claim alone)."""
    weights = penalties or _Penalties.of([claim])
    cost = placement_cost(claim, replicas)
    return (
        cost
        + weights.per_token * shortfall(claim, replicas)
        + weights.per_replica * max(0, claim.min_replicas - sum(replicas.values()))
    )


def fleet_objective(
    claims: Sequence[Claim],
    placements: Mapping[str, Mapping[str, int]],
    priority: int | None = None,
) -> float:
    """Σ of `objective` over the fleet (or over one ``priority`` tier), with the whole fleet's
    penalties: what `arbitrate` minimises, tier by tier."""
    penalties = _Penalties.of(claims)
    return math.fsum(
        objective(c, placements.get(c.key, {}), penalties)
        for c in claims
        if priority is None or c.priority == priority
    )


def placement_cost(claim: Claim, replicas: Mapping[str, int]) -> float:
    return math.fsum(o.cost * replicas.get(o.pool, 0) for o in claim.options)


def shortfall(claim: Claim, replicas: Mapping[str, int]) -> float:
    served = math.fsum(o.tokens_per_second * replicas.get(o.pool, 0) for o in claim.options)
    short = claim.required - served
    return 0.0 if short <= _TOLERANCE * max(1.0, claim.required) else short


# ---------------------------------------------------------------------------------------------


def _checked(claims: Sequence[Claim]) -> list[Claim]:
    keys = [c.key for c in claims]
    if len(set(keys)) != len(keys):
        raise ArbiterError("claims must have unique keys")
    return sorted(claims, key=lambda c: c.key)


def _left(
    units: Mapping[str, int], claims: Iterable[Claim], placed: Mapping[str, Mapping[str, int]]
) -> dict[str, int]:
    """The units per pool still free once ``claims`` hold their ``placed`` replicas."""
    remaining = dict(units)
    for claim in claims:
        _take(remaining, claim, placed[claim.key])
    return remaining


def _objective_of(
    claims: Iterable[Claim], placed: Mapping[str, Mapping[str, int]], penalties: _Penalties
) -> float:
    """Σ of `objective` over ``claims`` placed as ``placed`` says."""
    return math.fsum(objective(c, placed[c.key], penalties) for c in claims)


def _take(remaining: dict[str, int], claim: Claim, placed: Mapping[str, int]) -> None:
    for option in claim.options:
        if option.pool in remaining:
            remaining[option.pool] -= option.units * placed.get(option.pool, 0)


def _upper(option: ClaimOption, claim: Claim, remaining: Mapping[str, int]) -> int:
    """Most replicas worth placing on the pool: within its room and the claim's bounds, and no
    more than cover the claim alone (or its replicas.min): one more never lowers the cost."""
    room = remaining.get(option.pool, 0) // option.units
    enough = claim.min_replicas
    if option.tokens_per_second > 0:
        enough = max(enough, math.ceil(claim.required / option.tokens_per_second - 1e-9))
    return max(0, min(option.upper, claim.max_replicas, room, enough))


def _alone(claim: Claim, remaining: Mapping[str, int], penalties: _Penalties) -> dict[str, int]:
    """The deployment's own optimum within ``remaining``: the planner's exact solver when it
    can serve its claim in full (fast for the usual few pools), else the penalised programme."""
    options = [
        o for o in sorted(claim.options, key=lambda o: o.pool) if _upper(o, claim, remaining) > 0
    ]
    terms = [
        PoolTerms(o.cost, o.tokens_per_second, 0, _upper(o, claim, remaining)) for o in options
    ]
    found = solve_min_cost(terms, claim.required, claim.min_replicas, claim.max_replicas)
    if found is not None:
        return {o.pool: n for o, n in zip(options, found, strict=True) if n > 0}
    return _solve([claim], remaining, penalties)[0][claim.key]


def _units(claim: Claim, pool: str) -> int:
    option = claim.option(pool)
    return option.units if option is not None else 1


def _fits(
    claims: Sequence[Claim], placements: Mapping[str, Mapping[str, int]], units: Mapping[str, int]
) -> bool:
    used: dict[str, int] = {}
    for claim in claims:
        for option in claim.options:
            count = placements[claim.key].get(option.pool, 0)
            used[option.pool] = used.get(option.pool, 0) + option.units * count
    return all(n <= units.get(pool, 0) for pool, n in used.items() if n > 0)


def _solve(
    tier: Sequence[Claim], remaining: Mapping[str, int], penalties: _Penalties
) -> tuple[dict[str, dict[str, int]], bool]:
    """The joint optimum of one tier within ``remaining`` units."""
    found = _programme(tier, remaining, penalties)
    if found is not None:
        return found
    # No answer within the time limit (never seen at fleet size): one by one, in key order.
    placed: dict[str, dict[str, int]] = {}
    left = dict(remaining)
    for claim in tier:
        one = _solve([claim], left, penalties)[0] if len(tier) > 1 else {claim.key: {}}
        placed[claim.key] = one[claim.key]
        _take(left, claim, one[claim.key])
    return placed, False


def _programme(
    tier: Sequence[Claim],
    remaining: Mapping[str, int],
    penalties: _Penalties,
    held: Sequence[tuple[Sequence[Claim], float]] = (),
    staying: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[dict[str, dict[str, int]], bool] | None:
    """The integer programme: x[d, p] integer, a continuous token shortfall and replica
    shortfall per deployment; None when HiGHS gives no answer.

    ``held``: higher tiers' deployments that may move, each group with the most its objective
    may reach (one row each); ``staying``: their placements now. Their own cost is not minimised
    (their rows bound it); a column per replica count in place, worth `_STAY_WEIGHT` in all,
    keeps as many of them where they are as the tier's optimum allows."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    everyone = [*tier, *(c for claims, _ in held for c in claims)]
    weight = [1.0] * len(tier) + [0.0] * (len(everyone) - len(tier))
    columns: list[tuple[int, ClaimOption]] = []
    for index, claim in enumerate(everyone):
        for option in sorted(claim.options, key=lambda o: o.pool):
            if option.pool in remaining and _upper(option, claim, remaining) > 0:
                columns.append((index, option))
    n_x, n_d = len(columns), len(everyone)
    if n_x == 0:
        return {c.key: {} for c in everyone}, True
    # A higher deployment's replicas that may stay where they are: (x column, how many).
    stays = [
        (j, min(_upper(option, everyone[index], remaining), now))
        for j, (index, option) in enumerate(columns)
        if index >= len(tier)
        and (now := (staying or {}).get(everyone[index].key, {}).get(option.pool, 0)) > 0
    ]
    # x, then token shortfall s_d, then replica shortfall u_d, then the replicas kept in place
    size = n_x + 2 * n_d + len(stays)
    cost = np.zeros(size)
    lower = np.zeros(size)
    upper = np.zeros(size)
    integrality = np.zeros(size)
    for j, (index, option) in enumerate(columns):
        cost[j] = option.cost * weight[index]
        upper[j] = _upper(option, everyone[index], remaining)
        integrality[j] = 1
    cheapest = min((o.cost for i, o in columns if i < len(tier) and o.cost > 0), default=1.0)
    reward = _STAY_WEIGHT * min(1.0, cheapest) / (1 + sum(n for _, n in stays))
    for k, (_, now) in enumerate(stays):
        cost[n_x + 2 * n_d + k] = -reward
        upper[n_x + 2 * n_d + k] = now
    for index, claim in enumerate(everyone):
        cost[n_x + index] = penalties.per_token * weight[index]
        upper[n_x + index] = claim.required
        cost[n_x + n_d + index] = penalties.per_replica * weight[index]
        upper[n_x + n_d + index] = claim.min_replicas
    # Sparse rows: per deployment its served tokens/s, its replicas (≥ min, with the shortfall
    # column) and its replicas (≤ max); per pool the units used.
    rows = ConstraintRows()
    mine: dict[int, list[int]] = {}
    for j, (index, _) in enumerate(columns):
        mine.setdefault(index, []).append(j)
    for index, claim in enumerate(everyone):
        js = mine.get(index, [])
        if claim.required > 0:
            serve = [(j, columns[j][1].tokens_per_second) for j in js]
            rows.add([*serve, (n_x + index, 1.0)], claim.required, np.inf)
        rows.add(
            [*((j, 1.0) for j in js), (n_x + n_d + index, 1.0)], float(claim.min_replicas), np.inf
        )
        if js:
            rows.add(((j, 1.0) for j in js), 0.0, float(claim.max_replicas))
    by_pool: dict[str, list[int]] = {}
    for j, (_, option) in enumerate(columns):
        by_pool.setdefault(option.pool, []).append(j)
    for pool in sorted(by_pool):
        units = ((j, float(columns[j][1].units)) for j in by_pool[pool])
        rows.add(units, 0.0, float(remaining[pool]))
    # Per higher tier: its objective (cost and penalties, at full weight) within its bound.
    first = len(tier)
    for claims, bound in held:
        group = range(first, first + len(claims))
        terms = [(j, columns[j][1].cost) for j, (index, _) in enumerate(columns) if index in group]
        terms += [(n_x + index, penalties.per_token) for index in group]
        terms += [(n_x + n_d + index, penalties.per_replica) for index in group]
        rows.add(terms, -np.inf, bound)
        first += len(claims)
    for k, (j, _) in enumerate(stays):
        rows.add([(j, 1.0), (n_x + 2 * n_d + k, -1.0)], 0.0, np.inf)
    result = milp(
        c=cost,
        constraints=LinearConstraint(rows.matrix(size), rows.low, rows.high),
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={
            "mip_rel_gap": 1e-9 if n_x <= EXACT_COLUMNS else LARGE_GAP,
            "node_limit": NODE_LIMIT,
            "time_limit": TIME_LIMIT_SECONDS,
        },
    )
    if result.x is None:
        return None
    placed: dict[str, dict[str, int]] = {c.key: {} for c in everyone}
    for j, (index, option) in enumerate(columns):
        count_ = round(float(result.x[j]))
        if count_ > 0:
            placed[everyone[index].key][option.pool] = count_
    return placed, result.status == 0


def _report(
    pools: Mapping[str, int],
    claims: Sequence[Claim],
    solution: _Solution,
    remaining: Mapping[str, int],
    penalties: _Penalties,
) -> Arbitration:
    units = {p: max(0, int(n)) for p, n in sorted(pools.items())}
    leftover = {p: max(0, n) for p, n in remaining.items()}
    allotments: dict[str, Allotment] = {}
    taken_by: dict[str, list[str]] = {}
    preferences: dict[str, tuple[dict[str, int], float]] = {}
    on_pool: dict[str, list[str]] = {}
    for key, placed in solution.replicas.items():
        for pool, count in placed.items():
            if count > 0:
                on_pool.setdefault(pool, []).append(key)
    for claim in claims:
        alone = _alone(claim, units, penalties)
        preferences[claim.key] = (alone, objective(claim, alone, penalties))
    for claim in claims:
        mine = solution.replicas.get(claim.key, {})
        preferred, preferred_objective = preferences[claim.key]
        worse = objective(claim, mine, penalties) > preferred_objective + 1e-9 * max(
            1.0, abs(preferred_objective)
        )
        # A pool is lost to others only where what it misses there does not fit what is left.
        lost = tuple(
            sorted(
                p
                for p, n in preferred.items()
                if worse
                and mine.get(p, 0) < n
                and leftover.get(p, 0) < _units(claim, p) * (n - mine.get(p, 0))
            )
        )
        holders = sorted({k for pool in lost for k in on_pool.get(pool, ()) if k != claim.key})
        for holder in holders:
            taken_by.setdefault(holder, []).append(claim.key)
        caps = {}
        for option in claim.options:
            spare = leftover.get(option.pool, 0) // option.units if option.pool in units else 0
            cap = mine.get(option.pool, 0) + spare
            caps[option.pool] = max(0, min(option.upper, cap)) if option.pool in units else 0
        allotments[claim.key] = Allotment(
            key=claim.key,
            priority=claim.priority,
            replicas=dict(mine),
            caps=caps,
            preferred=dict(preferred),
            cost=placement_cost(claim, mine),
            preferred_cost=placement_cost(claim, preferred),
            shortfall=shortfall(claim, mine),
            displaced_by=tuple(holders),
            lost_pools=lost if holders else (),
        )
    for key, displaced in taken_by.items():
        current = allotments[key]
        allotments[key] = replace(current, displacing=tuple(sorted(displaced)))
    return Arbitration(
        allotments=allotments,
        pools=units,
        leftover=leftover,
        cost=math.fsum(a.cost for a in allotments.values()),
        shortfall=math.fsum(a.shortfall for a in allotments.values()),
        exact=solution.exact,
    )
