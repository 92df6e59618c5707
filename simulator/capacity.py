"""Capacity planning for a SAS queue: Erlang C, and Erlang A when callers give up.

Why both: Erlang C (M/M/N) assumes every caller waits as long as it takes, so it overstates waits
under load and gives the staffing that meets the target for *patient* callers — the safe figure
for the 15. Erlang A (M/M/N+M, Palm 1943; Garnett, Mandelbaum & Reiman 2002) adds exponential
patience, which is what a real surge looks like (callers hang up and call back); it is the figure
to read next to the abandon rate.

Notation: arrival rate ``λ`` (calls/s), mean handle time ``1/μ`` (s), ``N`` agents, offered load
``A = λ/μ`` Erlangs, mean patience ``1/θ`` (s), service-level threshold ``t`` (30 s for QS30).

Erlang C (Erlang 1917; see Gans, Koole & Mandelbaum 2003, "Telephone call centers", eq. 2):

    C(N, A) = (A^N / N!) · N/(N−A) / ( Σ_{k<N} A^k/k! + (A^N / N!) · N/(N−A) )      (A < N)
    P(W ≤ t) = 1 − C(N, A) · e^{−(Nμ − λ) t}
    E[W] = C(N, A) / (Nμ − λ)

computed with the numerically stable Erlang B recursion B(0)=1, B(k) = A·B(k−1)/(k + A·B(k−1)),
C = N·B / (N − A(1 − B)).

Erlang A is computed exactly from its birth–death chain (no closed form for the service level
that stays stable for large N): states n = number of callers present, births λ, deaths
min(n, N)μ + max(n − N, 0)θ, truncated where the stationary mass is negligible. A caller who
arrives with k callers queued ahead stands at position k; it moves forward at rate Nμ + kθ (a
service or an abandon ahead) and abandons itself at rate θ. Its chance of being answered within
t is the absorption probability of that small chain, computed by uniformization (Grassmann 1977).
QS30 "of answered" (annex 3) is then P(answered within t) / P(answered).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability B(N, A) by the stable recursion."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller waits, C(N, A); 1.0 when the queue is unstable (A ≥ N)."""
    if agents <= 0 or load >= agents:
        return 1.0
    if load <= 0:
        return 0.0
    blocking = erlang_b(agents, load)
    return agents * blocking / (agents - load * (1 - blocking))


@dataclass(frozen=True)
class Queue:
    """One queue's inputs: calls per hour, mean handle time (s), and optionally mean patience (s)."""

    calls_per_hour: float
    handle_time: float
    patience: float | None = None

    @property
    def rate(self) -> float:
        return self.calls_per_hour / 3600.0

    @property
    def load(self) -> float:
        """Offered load A in Erlangs."""
        return self.rate * self.handle_time


@dataclass(frozen=True)
class Forecast:
    agents: int
    load: float
    occupancy: float
    wait_probability: float
    service_level: float  # of answered calls, answered within the threshold
    mean_wait: float
    abandon_rate: float  # 0 for Erlang C

    def public(self) -> dict[str, float | int]:
        return {"agents": self.agents, "load": round(self.load, 2), "occupancy": round(self.occupancy, 3),
                "wait_probability": round(self.wait_probability, 4), "service_level": round(self.service_level, 4),
                "mean_wait": round(self.mean_wait, 1), "abandon_rate": round(self.abandon_rate, 4)}


def erlang_c_forecast(queue: Queue, agents: int, threshold: float = 30.0) -> Forecast:
    """Erlang C: P(W ≤ t) = 1 − C·e^{−(Nμ−λ)t}; unstable queues get service level 0."""
    load, mu = queue.load, 1.0 / queue.handle_time
    if agents <= load:
        return Forecast(agents, load, 1.0, 1.0, 0.0, math.inf, 0.0)
    wait = erlang_c(agents, load)
    drain = agents * mu - queue.rate
    return Forecast(agents, load, load / agents, wait, 1 - wait * math.exp(-drain * threshold), wait / drain, 0.0)


def _stationary(queue: Queue, agents: int, theta: float) -> list[float]:
    """Stationary distribution of the M/M/N+M chain, truncated when the tail is negligible."""
    lam, mu = queue.rate, 1.0 / queue.handle_time
    weights = [1.0]
    n = 0
    while True:
        n += 1
        death = min(n, agents) * mu + max(n - agents, 0) * theta
        weights.append(weights[-1] * lam / death)
        if n > agents and (weights[-1] < 1e-14 * sum(weights) or n > agents + 5000):
            break
        if weights[-1] > 1e250:  # rescale to stay finite with large loads
            weights = [w / 1e250 for w in weights]
    total = sum(weights)
    return [w / total for w in weights]


def _answered_within(position: int, agents: int, mu: float, theta: float, threshold: float | None) -> float:
    """P(a caller at queue ``position`` is answered within ``threshold``) (None: ever answered)."""
    forward = [agents * mu + k * theta for k in range(position + 1)]
    if threshold is None:
        # Each step forward beats the caller's own abandon with probability f/(f+θ).
        out = 1.0
        for rate in forward:
            out *= rate / (rate + theta)
        return out
    # Uniformization: the chain over positions position..0, then "answered" (absorbing).
    top = max(forward) + theta
    steps_mean = top * threshold
    state = [0.0] * (position + 1)
    state[position] = 1.0
    answered = 0.0
    term = math.exp(-steps_mean)  # Poisson weight of 0 jumps
    cumulative = term
    result = 0.0  # Σ_k Poisson(k) · P(answered after k jumps)
    k = 0
    while cumulative < 1 - 1e-12 and k < 100_000:
        k += 1
        nxt = [0.0] * (position + 1)
        for i, mass in enumerate(state):
            if not mass:
                continue
            go = forward[i] / top
            stay = 1 - go - theta / top
            if i == 0:
                answered += mass * go
            else:
                nxt[i - 1] += mass * go
            nxt[i] += mass * stay
        state = nxt
        term *= steps_mean / k
        cumulative += term
        result += term * answered
    return result + (1 - cumulative) * answered


def erlang_a_forecast(queue: Queue, agents: int, threshold: float = 30.0) -> Forecast:
    """Erlang A (M/M/N+M): exact from the birth–death chain; service level of *answered* calls."""
    if not queue.patience:
        return erlang_c_forecast(queue, agents, threshold)
    lam, mu, theta = queue.rate, 1.0 / queue.handle_time, 1.0 / queue.patience
    pi = _stationary(queue, agents, theta)
    wait_probability = sum(pi[agents:])
    answered = within = 0.0
    for n, mass in enumerate(pi):
        if n < agents:
            answered += mass
            within += mass
            continue
        position = n - agents  # callers queued ahead of an arrival (PASTA)
        if mass < 1e-12:
            continue
        answered += mass * _answered_within(position, agents, mu, theta, None)
        within += mass * _answered_within(position, agents, mu, theta, threshold)
    queued = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    abandon_rate = theta * queued / lam  # abandons per arrival (Little on the queue)
    busy = sum(min(n, agents) * p for n, p in enumerate(pi))
    return Forecast(agents, queue.load, busy / agents, wait_probability, within / answered if answered else 0.0,
                    queued / lam, abandon_rate)


def agents_needed(queue: Queue, target: float, threshold: float = 30.0, *, max_agents: int = 500) -> Forecast:
    """The fewest agents whose forecast service level meets ``target`` (Erlang A if patience is given)."""
    forecast = erlang_a_forecast if queue.patience else erlang_c_forecast
    agents = max(1, math.floor(queue.load))
    while agents <= max_agents:
        result = forecast(queue, agents, threshold)
        if result.service_level >= target and (queue.patience or agents > queue.load):
            return result
        agents += 1
    raise ValueError(f"no staffing up to {max_agents} agents reaches {target:.0%} within {threshold:.0f} s")
