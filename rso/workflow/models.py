"""Workflow items (one running procedure about one subject) and their transition history."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow

#: Sort key for items whose state has no timeframe: after every real deadline. A NULL would
#: sort first on SQLite and last on PostgreSQL, which breaks keyset paging across engines.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)

#: ``needs_rank`` when the subject has no specific needs. Domain code folds the subject's
#: specific-needs codes into 0..9 (0 = most acute, e.g. an unaccompanied child or a medical
#: emergency); within one priority, queues serve lower ranks first.
NO_SPECIFIC_NEEDS = 9


class WorkflowItem(PublicIdMixin, Base):
    """One procedure running for one subject (a case, a person, a group).

    Queue order is ``(priority, needs_rank, queue_due_at, id)``: emergencies first, then the
    most acute specific needs, then the nearest deadline, then the oldest item.
    """

    __tablename__ = "workflow_items"
    __table_args__ = (
        Index(
            "ix_workflow_items_queue",
            "procedure", "state", "priority", "needs_rank", "queue_due_at", "id",
        ),
        Index(
            "ix_workflow_items_office_queue",
            "office_id", "procedure", "state", "priority", "needs_rank", "queue_due_at", "id",
        ),
        Index("ix_workflow_items_subject", "subject_type", "subject_id"),
        #: open-item counts per procedure and state (dashboards)
        Index("ix_workflow_items_open", "closed", "procedure", "state"),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # The row version guards every UPDATE (WHERE version = <read value>): two people firing
        # on the same item at once cannot both win. The engine bumps it itself.
        return {"version_id_col": cls.__table__.c.version, "version_id_generator": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    #: procedure name (a file in workflows/, possibly a variant)
    procedure: Mapped[str] = mapped_column(String(64))
    #: the file's ``version`` when the item started
    procedure_version: Mapped[int] = mapped_column(default=1)
    #: rsd, rsd_appeal, referral, resettlement, return: selects guard providers
    kind: Mapped[str] = mapped_column(String(32))
    #: what the item is about, e.g. ("case", 17); no foreign key, subjects live in many tables
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int]
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    state: Mapped[str] = mapped_column(String(64))
    #: 0 emergency, 1 urgent, 2 normal (lower first)
    priority: Mapped[int] = mapped_column(SmallInteger, default=2)
    #: 0..9 from the subject's specific needs, lower first; 9 = none (see NO_SPECIFIC_NEEDS)
    needs_rank: Mapped[int] = mapped_column(SmallInteger, default=NO_SPECIFIC_NEEDS)
    #: when the current state's timeframe runs out (None: the state has no timeframe)
    deadline_at: Mapped[datetime | None]
    #: from when the item shows as due soon
    warn_at: Mapped[datetime | None]
    #: deadline_at, or NO_DEADLINE: the non-null sort key the queues page on
    queue_due_at: Mapped[datetime] = mapped_column(default=NO_DEADLINE)
    entered_state_at: Mapped[datetime] = mapped_column(default=utcnow)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: True once the item reached a final state; nothing fires on it any more
    closed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    #: JSON object of the (non-personal) fields collected by transitions, latest value per name
    data: Mapped[str] = mapped_column(Text, default="{}")

    history: Mapped[list[WorkflowTransition]] = relationship(
        back_populates="item", order_by="WorkflowTransition.id", cascade="all, delete-orphan"
    )

    @property
    def values(self) -> dict[str, Any]:
        """The collected data as a dict (a copy: assign through the engine, not here)."""
        return json.loads(self.data or "{}")

    def is_overdue(self, now: datetime | None = None) -> bool:
        return self.deadline_at is not None and not self.closed and (now or utcnow()) >= self.deadline_at

    def is_due_soon(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.warn_at is None or self.closed:
            return False
        return self.warn_at <= now and not self.is_overdue(now)

    @property
    def overdue(self) -> bool:
        return self.is_overdue()

    def __repr__(self) -> str:
        return f"<WorkflowItem {self.id} {self.procedure}:{self.state}>"


class WorkflowTransition(Base):
    """One step in an item's history (starting counts as the step ``start``). Append-only."""

    __tablename__ = "workflow_transitions"
    __table_args__ = (Index("ix_workflow_transitions_item", "item_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("workflow_items.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: username at the time (kept if the account is renamed)
    username: Mapped[str] = mapped_column(String(64), default="")
    transition: Mapped[str] = mapped_column(String(64))
    #: empty for the start step
    from_state: Mapped[str] = mapped_column(String(64), default="")
    to_state: Mapped[str] = mapped_column(String(64))
    #: the transition's tags when it fired (comma separated), so guards that look for a
    #: recommendation still find it if the file is later edited
    tags: Mapped[str] = mapped_column(String(200), default="")
    #: JSON of the fields collected by this step (non-personal by rule)
    data: Mapped[str] = mapped_column(Text, default="{}")
    #: a short working note; personal details belong in the encrypted case file, not here
    comment: Mapped[str | None] = mapped_column(Text)

    item: Mapped[WorkflowItem] = relationship(back_populates="history")

    @property
    def tag_set(self) -> frozenset[str]:
        return frozenset(t for t in self.tags.split(",") if t)

    @property
    def values(self) -> dict[str, Any]:
        return json.loads(self.data or "{}")

    def __repr__(self) -> str:
        return f"<WorkflowTransition {self.transition} {self.from_state}->{self.to_state}>"
