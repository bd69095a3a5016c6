"""Run shards on a pool of Ray actors, surviving the loss of an actor or a node.

Each shard is handed to one idle actor; its result goes back to the driver,
which writes it (atomically) before the shard counts as done. When an actor
dies (its node was killed, the engine segfaulted) its shard goes back in the
queue, up to `max_attempts`, and a replacement actor starts in the background
(it joins when a node has room for it); a shard that keeps failing is reported
through `on_give_up`, and the rest of the run goes on.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

ActorFactory = Callable[[], Any]


class WorkerStartError(RuntimeError):
    pass


def run_pool(
    make_actor: ActorFactory,
    n_actors: int,
    shards: list[tuple[int, Any]],
    *,
    method: str,
    on_result: Callable[[int, Any], None],
    on_give_up: Callable[[int, Any, str], None],
    max_attempts: int = 3,
    warm_method: str | None = "warm",
    max_replacements: int = 5,
) -> None:
    if not shards:
        return
    n_actors = max(1, min(n_actors, len(shards)))
    actors = [make_actor() for _ in range(n_actors)]
    if warm_method:
        # Surfaces a bad model path or an engine that cannot start before any work is handed out.
        try:
            ray.get([getattr(a, warm_method).remote() for a in actors])
        except RayTaskError as e:
            for a in actors:
                ray.kill(a, no_restart=True)
            raise WorkerStartError(f"worker failed to start: {e.cause if e.cause is not None else e}") from e
    queue: deque[tuple[int, Any, int]] = deque((idx, payload, 1) for idx, payload in shards)
    idle = list(actors)
    running: dict[Any, tuple[Any, int, Any, int]] = {}
    # Replacements start in the background: on a cluster that lost a node there may be no room for
    # one until a node joins, and the surviving actors must keep taking shards meanwhile.
    starting: dict[Any, Any] = {}
    replacements = 0

    def replace() -> None:
        nonlocal replacements
        if replacements >= max_replacements:
            return
        replacements += 1
        actor = make_actor()
        if warm_method:
            starting[getattr(actor, warm_method).remote()] = actor
        else:
            idle.append(actor)

    try:
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                idx, payload, attempt = queue.popleft()
                ref = getattr(actor, method).remote(idx, payload)
                running[ref] = (actor, idx, payload, attempt)
            if not running and not starting:
                raise RuntimeError(
                    f"no worker left: {replacements} replacement(s) failed to start; "
                    f"{len(queue)} shard(s) not run (rerun with the same run id)"
                )
            done, _ = ray.wait(list(running) + list(starting), num_returns=1)
            ref = done[0]
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                except (ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError):
                    ray.kill(actor, no_restart=True)
                    time.sleep(1)
                    replace()
                continue
            actor, idx, payload, attempt = running.pop(ref)
            try:
                result = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as e:
                ray.kill(actor, no_restart=True)
                print(
                    f"[pool] shard {idx}: worker lost ({type(e).__name__}), shard re-queued", file=sys.stderr
                )
                replace()
                _retry_or_give_up(
                    queue, idx, payload, attempt, max_attempts, f"worker lost: {type(e).__name__}", on_give_up
                )
                continue
            except RayTaskError as e:
                idle.append(actor)
                cause = str(e).strip().splitlines()[-1][:300]
                _retry_or_give_up(
                    queue, idx, payload, attempt, max_attempts, f"task error: {cause}", on_give_up
                )
                continue
            idle.append(actor)
            on_result(idx, result)
    finally:
        for a in idle + list(starting.values()) + [r[0] for r in running.values()]:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # already gone
                pass


def _retry_or_give_up(
    queue: deque[tuple[int, Any, int]],
    idx: int,
    payload: Any,
    attempt: int,
    max_attempts: int,
    reason: str,
    on_give_up: Callable[[int, Any, str], None],
) -> None:
    if attempt < max_attempts:
        queue.append((idx, payload, attempt + 1))
    else:
        on_give_up(idx, payload, reason)
