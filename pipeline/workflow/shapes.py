"""The three workflow shapes and their JSON description, validated before anything is enqueued.

* ``chain(a, b, c)``: one step after the other; each step after the first
  receives the previous step's result as the keyword argument ``previous``;
  the chain stops at the first step that does not succeed.
* ``group([a, b, ...])``: all members at once; the group counts them.
* ``chord([a, b, ...], callback, on_failure=...)``: a group, then the callback
  once every member is final. The callback receives ``results`` (the members'
  results in member order, ``None`` for a member that did not succeed); with
  ``on_failure="run_with_summary"`` it also receives ``failures`` (a list of
  ``{"index", "task_id", "actor", "state", "error"}``) and runs whatever
  happened; with ``on_failure="skip"`` (the default) it runs only when every
  member succeeded, and is otherwise skipped (CANCELLED, the chord FAILURE).

The JSON description (HTTP, schedules) is the same shapes::

    {"kind": "chain", "steps": [step, ...]}
    {"kind": "group", "members": [step, ...]}
    {"kind": "chord", "members": [step, ...], "callback": step, "on_failure": "skip"}
    step = {"actor": "name", "kwargs": {...}, "priority": 0-9 (optional)}

The fields a workflow fills in later (``previous``, ``results``, ``failures``)
must be arguments of the receiving actor; they are left out when its other
arguments are validated at submission.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import pydantic

from pipeline.errors import InvalidArguments, UnknownActor
from pipeline.follow_ups import FAILURES, PREVIOUS, RESULTS
from pipeline.registry import MAX_PRIORITY, TaskSpec, get_task
from pipeline.workflow import submission

POLICIES = ("skip", "run_with_summary")
#: A group or chord has at most this many members (submitted in bulk batches).
MAX_MEMBERS = 100_000
MAX_STEPS = 100


@dataclass(frozen=True)
class Signature:
    """One task of a workflow: an actor and its arguments (Celery's ``signature``/``.s()``)."""

    actor: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    priority: Optional[int] = None

    def describe(self) -> dict[str, Any]:
        step: dict[str, Any] = {"actor": self.actor, "kwargs": self.kwargs}
        if self.priority is not None:
            step["priority"] = self.priority
        return step


def signature(actor: Union[str, TaskSpec], priority: Optional[int] = None, **kwargs: Any) -> Signature:
    """``signature("echo", value=1)``: a task to put in a workflow."""
    return Signature(actor if isinstance(actor, str) else actor.name, kwargs, priority)


Step = Union[Signature, str, TaskSpec]


def _sig(step: Step) -> Signature:
    return step if isinstance(step, Signature) else signature(step)


class Workflow:
    """Base of the shapes: ``submit()`` enqueues it and returns the workflow id."""

    kind: str

    def tasks(self) -> list[Signature]:
        """Every task in position order (a chord's callback last)."""
        raise NotImplementedError

    def first(self) -> int:
        """How many tasks, from position 0, run at once (the rest wait)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def validated(self) -> list[tuple[TaskSpec, dict[str, Any]]]:
        """(spec, normalised kwargs) of every task; InvalidArguments naming each bad field."""
        return validate(self)

    def submit(self, *, idempotency_key: Optional[str] = None, submitted_by: Optional[str] = None,
               name: Optional[str] = None, engine=None, user_id: Optional[str] = None,
               tenant_id: Optional[str] = None) -> str:
        return submission.submit(self, idempotency_key=idempotency_key, submitted_by=submitted_by, name=name,
                                 engine=engine, user_id=user_id, tenant_id=tenant_id)


@dataclass
class Chain(Workflow):
    steps: list[Signature]
    kind = "chain"

    def tasks(self) -> list[Signature]:
        return list(self.steps)

    def first(self) -> int:
        return 1

    def describe(self) -> dict[str, Any]:
        return {"kind": "chain", "steps": [s.describe() for s in self.steps]}


@dataclass
class Group(Workflow):
    members: list[Signature]
    kind = "group"

    def tasks(self) -> list[Signature]:
        return list(self.members)

    def first(self) -> int:
        return len(self.members)

    def describe(self) -> dict[str, Any]:
        return {"kind": "group", "members": [m.describe() for m in self.members]}


@dataclass
class Chord(Workflow):
    members: list[Signature]
    callback: Signature
    on_failure: str = "skip"
    kind = "chord"

    def tasks(self) -> list[Signature]:
        return [*self.members, self.callback]

    def first(self) -> int:
        return len(self.members)

    def describe(self) -> dict[str, Any]:
        return {"kind": "chord", "members": [m.describe() for m in self.members],
                "callback": self.callback.describe(), "on_failure": self.on_failure}


def chain(*steps: Step) -> Chain:
    """``chain(a, b, c)``: a, then b(previous=a's result), then c(previous=b's result)."""
    return Chain([_sig(s) for s in steps])


def group(members: Sequence[Step]) -> Group:
    return Group([_sig(m) for m in members])


def chord(members: Union[Group, Sequence[Step]], callback: Step, *, on_failure: str = "skip") -> Chord:
    members = members.members if isinstance(members, Group) else [_sig(m) for m in members]
    return Chord(list(members), _sig(callback), on_failure)


# -- validation ------------------------------------------------------------------------------


def late_fields(shape: Workflow, position: int) -> tuple[str, ...]:
    """The keyword arguments the workflow fills in for the task at *position*."""
    if isinstance(shape, Chain) and position > 0:
        return (PREVIOUS,)
    if isinstance(shape, Chord) and position == len(shape.members):
        return (RESULTS, FAILURES) if shape.on_failure == "run_with_summary" else (RESULTS,)
    return ()


def validate(shape: Workflow) -> list[tuple[TaskSpec, dict[str, Any]]]:
    """Check every task (actor, priority, arguments); return (spec, normalised kwargs) per task.

    Raises InvalidArguments naming each bad field by its place in the description
    (``steps.1.kwargs.x``, ``members.3.actor``, ``callback.priority``...).
    """
    tasks = shape.tasks()
    errors: dict[str, str] = {}
    if isinstance(shape, Chain) and not 1 <= len(tasks) <= MAX_STEPS:
        errors["steps"] = f"give 1 to {MAX_STEPS} steps"
    if isinstance(shape, (Group, Chord)) and not 1 <= len(shape.members) <= MAX_MEMBERS:
        errors["members"] = f"give 1 to {MAX_MEMBERS} members"
    if isinstance(shape, Chord) and shape.on_failure not in POLICIES:
        errors["on_failure"] = f"must be one of {', '.join(POLICIES)}"
    if errors:
        raise InvalidArguments("invalid workflow", errors)
    validated = []
    for position, sig in enumerate(tasks):
        place = _place(shape, position)
        try:
            spec = get_task(sig.actor)
        except UnknownActor as exc:
            errors[f"{place}.actor"] = exc.args[0]
            continue
        if sig.priority is not None and (not isinstance(sig.priority, int) or not 0 <= sig.priority <= MAX_PRIORITY):
            errors[f"{place}.priority"] = f"must be an integer 0..{MAX_PRIORITY}"
        if not isinstance(sig.kwargs, dict):
            errors[f"{place}.kwargs"] = "must be an object"
            continue
        try:
            validated.append((spec, _validate_kwargs(spec, sig.kwargs, late_fields(shape, position))))
        except InvalidArguments as exc:
            errors.update({f"{place}.kwargs.{name}": text for name, text in exc.fields.items()})
        if len(errors) >= 20:
            break
    if errors:
        raise InvalidArguments("invalid workflow", errors)
    return validated


def _place(shape: Workflow, position: int) -> str:
    if isinstance(shape, Chain):
        return f"steps.{position}"
    if isinstance(shape, Chord) and position == len(shape.members):
        return "callback"
    return f"members.{position}"


def _validate_kwargs(spec: TaskSpec, kwargs: dict[str, Any], late: tuple[str, ...]) -> dict[str, Any]:
    given = sorted(set(late) & set(kwargs))
    if given:
        raise InvalidArguments("filled in by the workflow", {name: "filled in by the workflow; leave it out" for name in given})
    if spec.args_model is None:
        missing = [name for name in late if not _accepts(spec.fn, name)]
    else:
        missing = [name for name in late if name not in spec.args_model.model_fields]
    if missing:
        raise InvalidArguments(
            f"{spec.name} cannot receive {', '.join(missing)}",
            {name: f"{spec.name} has no argument {name!r} to receive it" for name in missing},
        )
    if spec.args_model is None:
        return kwargs
    model = _with_optional(spec.args_model, late)
    try:
        return model.model_validate(kwargs).model_dump(mode="json", exclude_none=True, exclude=set(late))
    except pydantic.ValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]) or "kwargs": e["msg"] for e in exc.errors()}
        raise InvalidArguments(f"invalid arguments for {spec.name}", fields) from None


def _accepts(fn, name: str) -> bool:
    parameters = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


@functools.lru_cache(maxsize=256)
def _with_optional(model: type[pydantic.BaseModel], late: tuple[str, ...]) -> type[pydantic.BaseModel]:
    """*model* with the late fields optional (its validators still run on the rest)."""
    if not late:
        return model
    return pydantic.create_model(f"{model.__name__}Before", __base__=model, **{name: (Optional[Any], None) for name in late})


# -- the JSON description --------------------------------------------------------------------


def from_description(body: Any) -> Workflow:
    """The shape a JSON description stands for (InvalidArguments naming bad fields)."""
    if not isinstance(body, dict):
        raise InvalidArguments("a workflow is a JSON object", {"body": "must be an object"})
    kind = body.get("kind")
    allowed = {"chain": {"kind", "steps"}, "group": {"kind", "members"},
               "chord": {"kind", "members", "callback", "on_failure"}}
    if kind not in allowed:
        raise InvalidArguments("unknown workflow kind", {"kind": "must be chain, group or chord"})
    unknown = set(body) - allowed[kind] - {"name", "idempotency_key"}
    if unknown:
        raise InvalidArguments("unknown fields", {name: "not a field of a " + kind for name in sorted(unknown)})
    if kind == "chain":
        return Chain(_steps(body.get("steps"), "steps"))
    members = _steps(body.get("members"), "members")
    if kind == "group":
        return Group(members)
    return Chord(members, _step(body.get("callback"), "callback"), body.get("on_failure", "skip"))


def _steps(items: Any, place: str) -> list[Signature]:
    if not isinstance(items, list) or not items:
        raise InvalidArguments("missing tasks", {place: "must be a non-empty list of {actor, kwargs}"})
    if len(items) > MAX_MEMBERS:
        raise InvalidArguments("too many tasks", {place: f"at most {MAX_MEMBERS}"})
    return [_step(item, f"{place}.{i}") for i, item in enumerate(items)]


def _step(item: Any, place: str) -> Signature:
    if not isinstance(item, dict) or not isinstance(item.get("actor"), str):
        raise InvalidArguments("invalid task", {place: "must be an object with an actor name"})
    unknown = set(item) - {"actor", "kwargs", "priority"}
    if unknown:
        raise InvalidArguments("unknown fields", {f"{place}.{name}": "not a field of a task" for name in sorted(unknown)})
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidArguments("invalid kwargs", {f"{place}.kwargs": "must be an object"})
    return Signature(item["actor"], kwargs, item.get("priority"))
