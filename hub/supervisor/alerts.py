"""The SLA alert engine: session changes arm, re-arm or cancel scheduled timers (one per rule and
session, ``Timers``: fired by ``call_later`` at the deadline, not by a sweep); a timer that fires
stores an alert with its timeline, pushes ``alert.raised`` to supervisors and the agent, and escalates
(reassign or notify); a reply, transfer or close clears it (``alert.cleared``). Agents' rolling
average reply times are kept per agent and judged on every reply. At start everything is derived
again from the archive (open sessions, their messages, open alerts): an overdue deadline fires at once.
"""
from __future__ import annotations

import json
import logging
import math
from collections import deque
from typing import Any, Iterable

from sqlalchemy import select

from ..business_hours import BusinessHours, BusinessHoursError, from_json
from ..clock import Clock
from ..db import Database
from ..models import SlaRuleRow
from ..push import SUPERVISORS, Push
from ..service.sessions import SessionChange, SessionService
from ..service.timers import Timers
from ..settings import Settings
from .alert_store import AlertStore
from .deadlines import ReplySample, deadline, rolling_average
from .sla_rules import RuleError, SlaRule, parse_rule
from .timeline import SessionClock, open_session_clocks, recent_reply_samples, session_clock

log = logging.getLogger(__name__)
rules_t = SlaRuleRow.__table__
SAMPLE_LOOKBACK = 24 * 3600.0  # reply times older than this do not count towards an agent's rolling average
KEEP_SAMPLES = 1000  # per agent, in memory
SESSION_KINDS = ("first_reply", "unanswered")


class AlertEngine:
    def __init__(self, db: Database, clock: Clock, push: Push, settings: Settings, timers: Timers,
                 sessions: SessionService):
        self.db = db
        self.clock = clock
        self.push = push
        self.settings = settings
        self.timers = timers
        self.sessions = sessions
        self.store = AlertStore(db)
        self.rules: list[SlaRule] = []
        self.clocks: dict[int, SessionClock] = {}
        self.samples: dict[int, deque[ReplySample]] = {}
        self.open: dict[str, dict[str, Any]] = {}  # alert key -> the open alert
        # timer key -> the deadline of an alert a supervisor acknowledged: not raised again for it
        self._acknowledged: dict[str, float] = {}
        # average alert keys a supervisor acknowledged: not raised again until the average is back under
        self._acknowledged_averages: set[str] = set()
        self._met_at: dict[str, float] = {}  # average alert key -> when the average was last within the limit
        self._hours: dict[str, tuple[str, BusinessHours | None]] = {}

    # -- start ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Derive every clock from the archive, clear what was met while the hub was down, arm the rest."""
        await self.load_rules()
        self.open = dict(await self.store.open_alerts())
        self.clocks = {c.session_id: c for c in await open_session_clocks(self.db)}
        self.samples = {}
        for s in await recent_reply_samples(self.db, self.clock.now() - SAMPLE_LOOKBACK):
            self.samples.setdefault(s.agent_id, deque(maxlen=KEEP_SAMPLES)).append(s)
        # the deadlines supervisors acknowledged are not raised again after a restart (on SQLite nothing
        # else remembers them; with several processes the timer claims make each firing happen once)
        for key, deadline_at in (await self.store.acknowledged_deadlines()).items():
            self._acknowledged.setdefault(key, deadline_at)
        await self._clear_met()
        await self.rearm_all()
        # judged right after: those back under the limit meanwhile are dropped again
        self._acknowledged_averages = await self.store.acknowledged_averages(self.clock.now() - SAMPLE_LOOKBACK)
        await self._judge_all_averages()

    async def _clear_met(self) -> None:
        """Clear the open alerts whose session closed or whose wait was met (seen by another process,
        or while the hub was down)."""
        for key, alert in list(self.open.items()):
            if alert["kind"] in SESSION_KINDS:
                clock = self.clocks.get(alert["session_id"])
                if clock is None:
                    await self._clear(key, "closed")
                elif not self._pending(alert["kind"], clock):
                    await self._clear(key, "replied")
            elif alert["kind"] == "quality" and alert["session_id"] not in self.clocks:
                await self._clear(key, "closed")

    async def resync(self) -> None:
        """Re-derive the session clocks and open alerts from the database and re-arm (with several hub
        processes, sessions change in other processes too; firing is claimed once across processes and
        re-reads the session before raising, so arming the same deadline in every process is safe)."""
        self.open = dict(await self.store.open_alerts())
        self.clocks = {c.session_id: c for c in await open_session_clocks(self.db)}
        await self._clear_met()  # a reply or close seen by a process that did not know the alert yet
        await self.rearm_all()

    async def _judge_all_averages(self) -> None:
        """Every agent with recent replies or an open average alert (which clears once they age out)."""
        agents = set(self.samples) | {a["agent_id"] for a in self.open.values() if a["kind"] == "avg_reply"}
        for agent_id in agents:
            if agent_id:
                await self._judge_average(agent_id)

    async def load_rules(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(rules_t).order_by(rules_t.c.id))).all()
        rules = []
        for r in rows:
            try:
                rules.append(parse_rule({**json.loads(r.data), "enabled": r.enabled, "name": r.name}, r.id))
            except (RuleError, ValueError) as exc:
                log.warning("SLA rule %s skipped: %s", r.id, exc)
        self.rules = rules

    async def rules_changed(self) -> None:
        """After a rule was added, changed or removed: re-arm every clock; alerts of a removed or
        disabled rule are cleared."""
        await self.load_rules()
        live = {r.id for r in self.rules if r.enabled}
        for key, alert in list(self.open.items()):
            if alert["kind"] != "quality" and alert["rule_id"] not in live:
                await self._clear(key, "rule_changed")
        await self.rearm_all()
        await self._judge_all_averages()

    def settings_changed(self, keys: set[str]) -> None:
        """Business hours changed (here or, reloaded, in another process): every armed deadline that
        counts only their time is computed again (a lunch break dropped left an alert 1.5 h late)."""
        if "business_hours" in keys:
            self._hours.clear()
            self._rearm()

    async def rearm_all(self) -> None:
        self._rearm()

    def _rearm(self) -> None:
        for key in self.timers.pending("sla:"):
            self.timers.cancel(key)
        for clock in self.clocks.values():
            self._arm(clock)

    # -- session changes (SessionService observer) ----------------------------------------------
    async def on_session_change(self, change: SessionChange) -> None:
        sid, at, kind = change.session_id, change.at, change.kind
        if kind == "closed":
            self._cancel(sid)
            await self._clear_session(sid, "closed", kinds=None)
            self.clocks.pop(sid, None)
            return
        clock = self.clocks.get(sid)
        if kind == "handover" or clock is None:
            if change.data.get("reopened"):
                await self._clear_session(sid, "reopened", kinds=None)
            clock = await session_clock(self.db, sid)
            if clock is None:
                return
            self.clocks[sid] = clock
        if kind in ("assigned", "accepted"):  # also for a session first seen just now (handed over elsewhere)
            clock.agent_id = change.data.get("agent_id", clock.agent_id)
            if kind == "assigned" and clock.agent_id:  # a breach from the queue: the new holder sees it red too
                for alert in [a for a in self.open.values() if a["session_id"] == sid]:
                    await self.push.to_user(clock.agent_id, "alert.raised", alert)
        elif kind == "customer_message":
            said = float(change.data.get("at") or at)
            if clock.waiting_since is None and said >= (clock.last_agent_at or 0):  # not one answered already
                clock.waiting_since = said
        elif kind == "agent_reply":
            replied = float(change.data.get("at") or at)
            agent_id = change.data.get("agent_id")
            if clock.waiting_since is not None and agent_id:
                self._add_sample(ReplySample(agent_id, clock.account_id, clock.waiting_since, replied,
                                             change.data.get("message_id")))
            clock.waiting_since = None
            clock.first_reply_at = clock.first_reply_at or replied
            clock.last_agent_at = replied
            await self._clear_session(sid, "replied")
            if agent_id:
                await self._judge_average(agent_id)
        elif kind in ("transferred", "requeued"):
            clock.restarted_at = at
            clock.agent_id = change.data.get("to_agent")
            await self._clear_session(sid, "transferred")
        self._arm(clock)

    # -- timers ---------------------------------------------------------------------------------
    def _pending(self, kind: str, clock: SessionClock) -> bool:
        if kind == "first_reply":
            return clock.first_reply_at is None
        return clock.first_reply_at is not None and clock.waiting_since is not None

    def _start(self, rule: SlaRule, clock: SessionClock) -> float | None:
        if not rule.enabled or rule.kind not in SESSION_KINDS or not rule.applies_to(clock.account_id, clock.group):
            return None
        if not self._pending(rule.kind, clock):
            return None
        since = clock.handover_at if rule.kind == "first_reply" else clock.waiting_since
        return max(since or clock.handover_at, clock.restarted_at)

    def deadline_of(self, rule: SlaRule, clock: SessionClock) -> float | None:
        start = self._start(rule, clock)
        if start is None:
            return None
        return deadline(start, rule.seconds, self._business_hours(rule, clock.account_id))

    def _arm(self, clock: SessionClock) -> None:
        for rule in self.rules:
            key = f"sla:{rule.id}:{clock.session_id}"
            due = self.deadline_of(rule, clock)
            acked = self._acknowledged.get(key)
            if acked is not None and (due is None or abs(acked - due) > 0.001):
                del self._acknowledged[key]  # a new wait: its own deadline
                acked = None
            if due is None or math.isinf(due) or _key(rule, clock.session_id) in self.open or acked is not None:
                self.timers.cancel(key)
                continue
            if self.timers.when(key) != due:
                self.timers.set(key, due, lambda r=rule.id, s=clock.session_id: self._fire(r, s))

    def _cancel(self, session_id: int) -> None:
        for rule in self.rules:
            self.timers.cancel(f"sla:{rule.id}:{session_id}")
            self._acknowledged.pop(f"sla:{rule.id}:{session_id}", None)

    async def _fire(self, rule_id: int, session_id: int) -> None:
        rule = next((r for r in self.rules if r.id == rule_id), None)
        if rule is None or session_id not in self.clocks:
            return
        # judged on the stored state, not only this process's memory (another hub process may have
        # seen the reply, a transfer or the close)
        clock = await session_clock(self.db, session_id)
        if clock is None:
            self.clocks.pop(session_id, None)
            return
        self.clocks[session_id] = clock
        due = self.deadline_of(rule, clock)
        if due is None or math.isinf(due):
            return
        if due > self.clock.now() + 0.0005:  # re-armed meanwhile (a business-hours pause, a change)
            self._arm(clock)
            return
        start = self._start(rule, clock)
        alert = await self._raise(_key(rule, session_id), {
            "kind": rule.kind, "rule_id": rule.id, "rule_name": rule.name, "session_id": session_id,
            "conversation_id": clock.conversation_id, "agent_id": clock.agent_id, "group": clock.group,
            "account_id": clock.account_id, "deadline": due,
            "detail": {"seconds": rule.seconds, "since": start,
                       "business_hours_only": rule.business_hours_only}})
        if alert is None:
            return
        # storing waits behind other writes: a reply, transfer or close meanwhile found no open alert to
        # clear (its observer has updated the clock since), so clear it now, and do not escalate
        current = self.clocks.get(session_id)
        if current is None or self._start(rule, current) != start:
            reason = "closed" if current is None else "replied" if not self._pending(rule.kind, current) \
                else "transferred"
            await self._clear(_key(rule, session_id), reason)
            if current is not None:
                self._arm(current)  # the new wait's own deadline
            return
        await self._escalate(rule, alert)

    async def _escalate(self, rule: SlaRule, alert: dict[str, Any]) -> None:
        now = self.clock.now()
        if rule.escalation == "notify" and rule.notify_user_id:
            await self.push.to_user(rule.notify_user_id, "alert.escalated", alert)
            await self.store.add_event(alert["id"], "escalated", now, {"action": "notify",
                                                                       "user_id": rule.notify_user_id})
        elif rule.escalation == "reassign" and alert["session_id"] and alert["agent_id"]:
            # (a session still queued has no one to take it from: nothing happens, nothing is recorded)
            await self.store.add_event(alert["id"], "escalated", now, {"action": "reassign",
                                                                       "from_agent": alert["agent_id"]})
            if not await self.sessions.reassign(alert["session_id"], "sla_breach", only_to_another=True):
                await self.store.add_event(alert["id"], "not_escalated", self.clock.now(),
                                           {"why": "no other agent online with room"})

    # -- rolling average reply time -------------------------------------------------------------
    def _add_sample(self, sample: ReplySample) -> None:
        self.samples.setdefault(sample.agent_id, deque(maxlen=KEEP_SAMPLES)).append(sample)

    def average(self, rule: SlaRule, agent_id: int) -> float | None:
        cutoff = self.clock.now() - SAMPLE_LOOKBACK
        samples = [s for s in self.samples.get(agent_id, ()) if s.replied_at >= cutoff
                   and (not rule.account_id or s.account_id == rule.account_id)]
        return rolling_average(samples, rule.window, self._business_hours(rule, rule.account_id), rule.min_samples)

    async def _judge_average(self, agent_id: int) -> None:
        info = self.sessions.agents.get(agent_id)
        groups = info.groups if info is not None else ()
        for rule in self.rules:
            if rule.kind != "avg_reply" or not rule.enabled or not rule.applies_to_agent(groups):
                continue
            key = f"sla:{rule.id}:a{agent_id}"
            avg = self.average(rule, agent_id)
            if avg is None or avg <= rule.seconds:
                self._acknowledged_averages.discard(key)  # met: a later breach is a new one
                self._met_at[key] = self.clock.now()
            if avg is not None and avg > rule.seconds and key not in self.open and key not in self._acknowledged_averages:
                if await self._acknowledged_elsewhere(key):
                    self._acknowledged_averages.add(key)
                    continue
                alert = await self._raise(key, {
                    "kind": "avg_reply", "rule_id": rule.id, "rule_name": rule.name, "session_id": None,
                    "conversation_id": None, "agent_id": agent_id, "group": rule.group, "account_id": rule.account_id,
                    "deadline": None, "detail": {"average": round(avg, 1), "seconds": rule.seconds,
                                                 "window": rule.window}})
                if alert is not None:
                    await self._escalate(rule, alert)
            elif key in self.open and (avg is None or avg <= rule.seconds):
                await self._clear(key, "met", {"average": None if avg is None else round(avg, 1)})
        self._judge_again_when_samples_age(agent_id)

    def _judge_again_when_samples_age(self, agent_id: int) -> None:
        """An open average alert is judged again when the agent's oldest counted reply ages out of the
        look-back: without replies it was judged never again, and stayed open for good."""
        key = f"avg-age:{agent_id}"
        if not any(a["kind"] == "avg_reply" and a["agent_id"] == agent_id for a in self.open.values()):
            self.timers.cancel(key)
            return
        cutoff = self.clock.now() - SAMPLE_LOOKBACK
        ages = [s.replied_at + SAMPLE_LOOKBACK for s in self.samples.get(agent_id, ()) if s.replied_at >= cutoff]
        if ages:
            self.timers.set(key, min(ages) + 1.0, lambda a=agent_id: self._judge_average(a))

    async def _acknowledged_elsewhere(self, key: str) -> bool:
        """The key's latest alert was acknowledged (in another hub process, say) and this process has not
        seen the average back within the limit since it was raised: the same breach goes on."""
        latest = await self.store.latest_for_key(key)
        return (latest is not None and latest["state"] == "cleared" and latest["clear_reason"] == "acknowledged"
                and self._met_at.get(key, float("-inf")) < latest["raised_at"])

    # -- raising and clearing -------------------------------------------------------------------
    async def _raise(self, key: str, values: dict[str, Any]) -> dict[str, Any] | None:
        alert, new = await self.store.raise_alert({**values, "key": key}, self.clock.now())
        self.open[key] = alert
        if not new:
            return None
        await self.push.to_room(SUPERVISORS, "alert.raised", alert)
        if alert["agent_id"]:
            await self.push.to_user(alert["agent_id"], "alert.raised", alert)
        return alert

    async def raise_quality(self, rule_id: int, rule_name: str, session_id: int, detail: dict[str, Any]) -> None:
        """A quality rule (customer anxiety words) asks for a supervisor's attention on a session."""
        clock = self.clocks.get(session_id) or await session_clock(self.db, session_id)
        if clock is None:
            return
        key = f"q:{rule_id}:s{session_id}"
        if key in self.open:
            await self.store.add_event(self.open[key]["id"], "matched", self.clock.now(), detail)
            return
        alert = await self._raise(key, {"kind": "quality", "rule_id": rule_id, "rule_name": rule_name,
                                        "session_id": session_id, "conversation_id": clock.conversation_id,
                                        "agent_id": clock.agent_id, "group": clock.group,
                                        "account_id": clock.account_id, "deadline": None, "detail": detail})
        if alert is not None and await session_clock(self.db, session_id) is None:
            await self._clear(key, "closed")  # closed while it was being stored: its close cleared nothing

    async def clear_alert(self, alert_id: int, reason: str, by: int | None = None) -> dict[str, Any] | None:
        """A supervisor acknowledges an alert."""
        key = next((k for k, a in self.open.items() if a["id"] == alert_id), None)
        if key is None:  # raised by another hub process since this one's last resync?
            found = await self.store.open_by_id(alert_id)
            if found is None:
                return None
            key = found[0]
            self.open[key] = found[1]
        alert = await self._clear(key, reason, {"by": by})
        if alert is not None and alert["kind"] == "avg_reply":
            self._acknowledged_averages.add(key)
        clock = self.clocks.get(alert["session_id"]) if alert and alert["session_id"] else None
        if clock is not None:
            if alert.get("rule_id") is not None and alert.get("deadline") is not None:
                self._acknowledged[f"sla:{alert['rule_id']}:{clock.session_id}"] = alert["deadline"]
            self._arm(clock)
        return alert

    async def _clear_session(self, session_id: int, reason: str, kinds: Iterable[str] | None = SESSION_KINDS) -> None:
        wanted = set(kinds) if kinds is not None else None
        if self.db.dialect == "postgresql":  # several processes: one may have raised it since our last resync
            for key, alert in await self.store.open_for_session(session_id):
                self.open.setdefault(key, alert)
        for key, alert in list(self.open.items()):
            if alert["session_id"] == session_id and (wanted is None or alert["kind"] in wanted):
                await self._clear(key, reason)

    async def _clear(self, key: str, reason: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        alert = self.open.pop(key, None)
        if alert is None:
            return None
        cleared = await self.store.clear(alert["id"], self.clock.now(), reason, data)
        if cleared is None:
            return None
        await self.push.to_room(SUPERVISORS, "alert.cleared", cleared)
        holder = self.clocks.get(cleared["session_id"]) if cleared["session_id"] else None
        for user_id in {cleared["agent_id"], holder.agent_id if holder else None} - {None, 0}:
            await self.push.to_user(user_id, "alert.cleared", cleared)
        return cleared

    def _business_hours(self, rule: SlaRule, account_id: str) -> BusinessHours | None:
        if not rule.business_hours_only:
            return None
        raw = self.settings.cached("business_hours", account_id)
        text = json.dumps(raw, sort_keys=True)
        cached = self._hours.get(account_id)
        if cached is None or cached[0] != text:
            try:
                hours = from_json(raw) if raw else None
            except BusinessHoursError as exc:
                log.warning("business_hours for %r unusable (%s): SLA clocks count all hours", account_id, exc)
                hours = None
            cached = (text, hours)
            self._hours[account_id] = cached
        return cached[1]


def _key(rule: SlaRule, session_id: int) -> str:
    return f"sla:{rule.id}:s{session_id}"
