"""What ``fit`` does when a run is interrupted or blows up: the interrupt exception, rollback marks, divergence test."""

from __future__ import annotations

import math
import signal
from typing import Any, NamedTuple

import numpy as np

from ._history import History

STATUS_INTERRUPTED = "interrupted"
STATUS_DIVERGED = "diverged"


class Interrupted(KeyboardInterrupt):
    """Stop a running :func:`sciml_jax.train.fit` at the last completed chunk (a ``KeyboardInterrupt`` subclass).

    Raise it from a signal handler (the CLI does so for SIGINT and SIGTERM); ``fit`` catches it, like Ctrl-C's
    ``KeyboardInterrupt``, writes a checkpoint at the last completed chunk and returns ``status == "interrupted"``.

    Args:
        signum: the signal that asked for the stop (default SIGINT); the CLI exits with ``128 + signum``.
    """

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def interrupt_name(exc: BaseException) -> str:
    """``"SIGTERM"`` for an :class:`Interrupted` raised for SIGTERM; ``"SIGINT"`` for a plain KeyboardInterrupt."""
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


class Mark(NamedTuple):
    """A consistent point of a fit (state, step, batch and the lengths of the history) to roll back to.

    The loop takes a mark after each chunk's bookkeeping; an interrupt that lands anywhere later (during the next
    chunk, its bookkeeping, a callback or a checkpoint write) restores the mark, so the checkpoint written on the
    way out always pairs parameters with the history and step count they belong to.
    """

    carry: Any
    step: int
    batch: Any
    batch_changed: bool
    n_steps: int
    n_evals: int
    n_events: int
    info_keys: tuple

    @classmethod
    def take(cls, carry: Any, step: int, batch: Any, batch_changed: bool, history: History) -> Mark:
        return cls(carry, step, batch, batch_changed, len(history.steps), len(history.eval_steps),
                   len(history.events), tuple(history.info))

    def restore(self, history: History) -> tuple[Any, int, Any, bool]:
        """Truncate ``history`` (in place) to the mark; return ``(carry, step, batch, batch_changed)``."""
        n = self.n_steps
        for lst in (history.steps, history.loss, history.grad_norm, *history.terms.values()):
            del lst[n:]
        for key in list(history.info):
            if key not in self.info_keys:
                del history.info[key]
            else:
                del history.info[key][n:]
        for lst in (history.eval_steps, history.wall_time_s, *history.metrics.values()):
            del lst[self.n_evals:]
        del history.events[self.n_events:]
        return self.carry, self.step, self.batch, self.batch_changed


def best_loss(history: History) -> tuple[float, int]:
    """The smallest finite loss recorded so far and its step (``(inf, -1)`` if none)."""
    loss = np.asarray(history.loss, dtype=float)
    ok = np.isfinite(loss)
    if not ok.any():
        return math.inf, -1
    i = int(np.argmin(np.where(ok, loss, np.inf)))
    return float(loss[i]), int(history.steps[i])


def divergence(
    losses: np.ndarray, first_step: int, best: float, best_step: int, factor: float | None
) -> tuple[float, int, str | None]:
    """The divergence test of one chunk, and the updated best loss.

    A run has diverged when the *smallest* loss of a whole chunk exceeds ``factor`` × the best loss of all earlier
    steps (``best > 0``). Taking the chunk's minimum makes a transient spike that recovers within the chunk (Adam
    at a very low loss, a line search overshooting) harmless; only a loss that stays up for a whole chunk counts.

    Returns:
        ``(best, best_step, message)``: ``message`` is None unless the chunk diverged.
    """
    losses = np.asarray(losses, dtype=float)
    if losses.size == 0:
        return best, best_step, None
    message = None
    low = float(np.min(losses))
    if factor is not None and math.isfinite(best) and best > 0 and low > factor * best:
        last = first_step + losses.size - 1
        message = (
            f"diverged: the loss stayed above {factor:g} x its best {best:.3e} (step {best_step}) for steps "
            f"{first_step}-{last} (smallest {low:.3e}, last {float(losses[-1]):.3e}); training stopped"
        )
    i = int(np.argmin(losses))
    if low < best:
        best, best_step = low, first_step + i
    return best, best_step, message


def final_divergence(history: History, factor: float | None) -> str | None:
    """A run that ends on a loss above ``factor`` x its best (e.g. an unstable learning rate whose last chunk
    still dipped to the best level, but whose final parameters are far from it); None otherwise."""
    if factor is None or not history.loss:
        return None
    last = float(history.loss[-1])
    best, best_step = best_loss(history)
    if math.isfinite(best) and best > 0 and last > factor * best:
        return (
            f"diverged: the final loss {last:.3e} (step {history.steps[-1]}) is above {factor:g} x its best "
            f"{best:.3e} (step {best_step}); the run ended far from its best parameters"
        )
    return None
