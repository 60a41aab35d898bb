"""Limits on the work a campaign template may do: a time budget and a size budget per render.

Jinja2's sandbox limits what a template may touch, not how much work it does: a marketing user
could write ``{{ 'a' * 300000000 }}`` (1.5 GB, 14 s) or three nested loops over
``range(100000)`` (a thread at 100 % until the process dies). This sandbox keeps the same rules
and adds a budget to every render, checked where a template can spend time or memory:

- every ``{% for %}`` iterates through a guard that checks the deadline (the template's tree is
  rewritten at compile time, so a loop cannot escape it);
- every output chunk is counted against the size limit and checks the deadline;
- every call (functions, methods, macros, ``loop()``) checks the deadline;
- operators and filters that can build a large value in one C call (``*``, ``+``, ``**``,
  ``%``, ``~``, ``center``, ``replace``, ``join``, ``format`` ...) are sized *before* they run,
  so a bomb is refused without allocating it; every intermediate value is capped at the size
  limit too.

Lists, dicts and sets cannot be modified (``ImmutableSandboxedEnvironment``): ``l.extend(l)`` in
a loop would double without any operator to check. Measured cost per recipient in
``bench/template_limits.py``. The alternative, a separate process with rlimits, costs an IPC
round trip per message; this one costs a few microseconds.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from itertools import islice
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    _mutable_spec,
    modifies_known_mutable,
)
from jinja2.utils import _PassArg

DEFAULT_SECONDS = 1.0
DEFAULT_MAX_BYTES = 1_000_000
# Checking the clock on every item of a loop would cost more than the loop; every 256th will do.
_CHECK_EVERY = 256
_BATCH = 32
_MUTATING = frozenset(name for _, names in _mutable_spec for name in names)
_GUARD = "prefsvc_guarded_loop"
_NUMBER = re.compile(r"\d+")
# Integers bigger than this many bits are refused (a googol has 333): ``9 ** 9 ** 9`` would
# keep a thread busy for minutes inside one C call.
_MAX_INT_BITS = 64_000


class TemplateTooCostly(Exception):
    """A template went over its time or size budget; the render was stopped, nothing kept."""


@dataclass(frozen=True)
class Limits:
    """How long one render may take and how large its output (or any value in it) may grow."""

    seconds: float = DEFAULT_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(settings.template_render_seconds, settings.template_max_bytes)

    def describe_size(self) -> str:
        return f"{self.max_bytes:,} bytes"


class _Budget:
    """One render's budget: a deadline, checked often but not on every step (see ``tick``)."""

    __slots__ = ("deadline", "limits", "ticks")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        shared = _shared_deadline.get()
        if shared is not None and shared < self.deadline:
            self.deadline = shared
        self.ticks = 0

    def tick(self) -> None:
        """Count a cheap step; check the clock every ``_CHECK_EVERY`` of them."""
        self.ticks += 1
        if not self.ticks % _CHECK_EVERY:
            self.check()

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateTooCostly(
                f"rendering takes more than {self.limits.seconds:g} s (the limit)"
            )

    def too_large(self, what: str = "the output") -> TemplateTooCostly:
        return TemplateTooCostly(
            f"{what} would be larger than {self.limits.describe_size()} (the limit)"
        )

    def allow(self, size: int, what: str = "a value") -> None:
        if size > self.limits.max_bytes:
            raise self.too_large(what)


_current: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)
_shared_deadline: ContextVar[float | None] = ContextVar("template_deadline", default=None)


@contextmanager
def one_deadline(limits: Limits) -> Iterator[None]:
    """Give every render inside one deadline together: a message's subject, HTML and text.

    Without it each template would have its own, and one recipient could hold a worker (or a
    save, the web thread) for three times the limit.
    """
    token = _shared_deadline.set(time.monotonic() + limits.seconds)
    try:
        yield
    finally:
        _shared_deadline.reset(token)


def _budget() -> _Budget | None:
    return _current.get()


def weight(value: Any, limit: int) -> int:
    """Estimate how many characters ``value`` would print as, stopping once past ``limit``.

    A list counts its items (one list of a million references to one large string is small in
    memory, but printed or joined it is not).
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return max(1, value.bit_length() // 3)
    if isinstance(value, float):
        return 24
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        total = len(value)
        if total > limit:
            return total
        for item in value:
            total += weight(item, limit)
            if total > limit:
                return total
        return total
    return 1


def _size_of_binop(operator: str, left: Any, right: Any, limit: int) -> int:
    """Return the size the operation's result would have, computed without doing it."""
    if operator == "*":
        if isinstance(right, str | list | tuple) and isinstance(left, int):
            left, right = right, left
        if isinstance(left, str | list | tuple) and isinstance(right, int):
            return weight(left, limit) * max(right, 0)
        if isinstance(left, int) and isinstance(right, int):
            return (left.bit_length() + right.bit_length()) // 3
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            return weight(left, limit) + weight(right, limit)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            return int(right * math.log2(abs(left))) // 3
    elif operator == "%" and isinstance(left, str):
        arguments = right if isinstance(right, tuple) else (right,)
        widths = [int(n) for n in _NUMBER.findall(left)]
        widths += [a for a in arguments if isinstance(a, int) and not isinstance(a, bool)]
        return len(left) + sum(weight(a, limit) for a in arguments) + max(widths, default=0)
    return 0


# Callables whose integer arguments set the size of their result (widths, lengths, counts).
_SIZING_NAMES = frozenset(
    {
        "center",
        "ljust",
        "rjust",
        "zfill",
        "expandtabs",
        "indent",
        "wordwrap",
        "format",
        "truncate",
        "batch",
        "slice",
    }
)
# Callables that can build a value much larger than their input; the others (``upper``,
# ``escape``, a macro...) cost no more than what they are given and are not sized, which
# keeps the send path fast.
_SIZED = _SIZING_NAMES | {"replace", "join", "sum"}


def _precheck_call(budget: _Budget, name: str, subject: Any, args: tuple, kwargs: dict) -> None:
    """Refuse a call whose result would be too large, before it is made."""
    limit = budget.limits.max_bytes
    values = [*args, *kwargs.values()]
    if name in _SIZING_NAMES:
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                raise budget.too_large(f"{name}()")
        if isinstance(subject, str) and name == "format":
            budget.allow(max((int(n) for n in _NUMBER.findall(subject)), default=0), "format()")
    if name == "replace" and isinstance(subject, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = subject.count(old) if old else len(subject) + 1
        budget.allow(len(subject) + count * len(new), "replace()")
    elif name == "indent" and isinstance(subject, str):
        prefix = next((v for v in values if isinstance(v, str)), "")
        budget.allow(len(subject) + (subject.count("\n") + 1) * len(prefix), "indent()")
    elif name == "join":
        items, separator = (args[0], subject) if isinstance(subject, str) else (subject, "")
        if isinstance(items, list | tuple):
            size = weight(items, limit) + len(items) * len(str(separator))
            budget.allow(size, "join()")
    elif name == "sum" and isinstance(subject, list | tuple):
        budget.allow(weight(subject, limit), "sum()")


def _checked_result(budget: _Budget, result: Any) -> Any:
    if isinstance(result, str | list | tuple | dict):
        budget.allow(weight(result, budget.limits.max_bytes))
    return result


class _Generator(CodeGenerator):
    """Compile ``a ~ b`` so that its result is sized like any other value."""

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedTemplate(jinja2.Template):
    """A template whose every render runs under its environment's ``Limits``."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        limits: Limits = self.environment.limits  # type: ignore[attr-defined]
        budget = _Budget(limits)
        token = _current.set(budget)
        try:
            context = self.new_context(dict(*args, **kwargs))
            parts: list[str] = []
            written, most = 0, limits.max_bytes
            chunks = self.root_render_func(context)
            # Output is counted in small batches taken at C speed: a chunk-by-chunk Python
            # loop cost more than the render; a batch holds at most _BATCH values, each capped.
            while batch := list(islice(chunks, _BATCH)):
                written += sum(map(len, batch))
                if written > most:
                    raise budget.too_large()
                budget.check()
                parts += batch
            rendered = self.environment.concat(parts)  # type: ignore[attr-defined]
            if written * 4 > limits.max_bytes and len(rendered.encode()) > limits.max_bytes:
                raise budget.too_large()
            return rendered
        except TemplateTooCostly:
            raise
        except Exception:
            self.environment.handle_exception()
        finally:
            _current.reset(token)


def _guarded(budget: _Budget, iterable: Iterable[Any]) -> Iterator[Any]:
    check = budget.check
    for n, item in enumerate(iterable, 1):
        if not n % _CHECK_EVERY:
            check()
        yield item


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox for marketing templates, with a time and size budget on every render."""

    intercepted_binops = frozenset({"*", "+", "**", "%", "//"})
    code_generator_class = _Generator
    template_class = BoundedTemplate

    def __init__(self, limits: Limits, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) loops in Python, past any check
        self.filters = {
            name: self._bounded_filter(name, f) if name in _SIZED else f
            for name, f in self.filters.items()
        }
        # A filter, not a call: called directly by the compiled code, the cheapest hook there is.
        self.filters[_GUARD] = self.guarded

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """As the immutable sandbox, but only ask the slow ABC checks about mutating names."""
        if not SandboxedEnvironment.is_safe_attribute(self, obj, attr, value):
            return False
        return attr not in _MUTATING or not modifies_known_mutable(obj, attr)

    # --- the rewritten tree: every loop iterates through ``guarded`` ------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _GUARD, [], [], None, None, lineno=loop.lineno)
        return tree

    def guarded(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate, checking the deadline when the loop starts and every few items."""
        budget = _budget()
        if budget is None:
            raise nodes.Impossible()  # folding a constant loop while compiling: leave it
        budget.check()
        return _guarded(budget, iterable)

    def sized(self, value: Any) -> Any:
        """Refuse a concatenation (``~``) past the size limit."""
        budget = _budget()
        if budget is not None:
            budget.allow(len(value), "a joined text (~)")
        return value

    # --- operators, calls and filters ------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if budget is not None:
            budget.check()
            limit = self.limits.max_bytes
            size = _size_of_binop(operator, left, right, limit)
            if operator in ("*", "**") and isinstance(left, int) and isinstance(right, int):
                if size * 3 > _MAX_INT_BITS:
                    raise TemplateTooCostly(f"a number in the template is too large ({operator})")
            elif size > limit:
                raise budget.too_large(f"the result of {operator!r}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.check()
        name = getattr(__obj, "__name__", "")
        if name not in _SIZED:
            return super().call(__context, __obj, *args, **kwargs)
        _precheck_call(budget, name, getattr(__obj, "__self__", None), args, kwargs)
        return _checked_result(budget, super().call(__context, __obj, *args, **kwargs))

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        """Join a macro's, a ``{% set %}`` block's or a ``{% filter %}`` block's output, sized.

        Jinja2 collects those outputs in a list and joins it at the end: the list may hold a
        million references to one large text, which the join would turn into a terabyte.
        """
        budget = _budget()
        if budget is None:
            return "".join(parts)
        parts = list(parts)
        budget.allow(sum(map(len, parts)), "a block's output")
        return "".join(parts)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        subject = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            budget = _budget()
            if budget is not None:
                _precheck_call(budget, "format", subject, args, kwargs)
            return wrapper(*args, **kwargs)

        return bounded

    def _bounded_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a filter so its arguments are sized first and its result after."""
        # A filter may take the context, eval context or environment first: not a value.
        skip = 1 if _PassArg.from_obj(function) is not None else 0

        def bounded(*args: Any, **kwargs: Any) -> Any:
            budget = _budget()
            if budget is None:
                # Jinja2 folds constant filter calls while compiling, outside any budget:
                # leave them to the render, where the budget applies.
                raise nodes.Impossible()
            budget.check()
            values = list(args[skip:])
            if name == "join" and values and not isinstance(values[0], list | tuple):
                values[0] = list(self.guarded(values[0]))
                args = (*args[:skip], *values)
            if name == "join" and values:
                separator = values[1] if len(values) > 1 else kwargs.get("d", "")
                _precheck_call(budget, "join", separator, (values[0],), {})
            elif values:
                _precheck_call(budget, name, values[0], tuple(values[1:]), kwargs)
            return _checked_result(budget, function(*args, **kwargs))

        return update_wrapper(bounded, function)


def environments(limits: Limits) -> tuple[BoundedSandbox, BoundedSandbox]:
    """Return a new HTML (autoescaped) and text sandbox under ``limits``."""
    return (
        BoundedSandbox(limits, autoescape=True, trim_blocks=False),
        BoundedSandbox(limits, autoescape=False),
    )
