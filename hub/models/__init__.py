"""SQLAlchemy 2.x typed models: the schema of the hub (the same on SQLite and PostgreSQL).

Times are epoch seconds as floats (``*_at``); platform times (``sent_at``) as the platform gives
them (integer seconds). JSON payloads are stored as text so the hot path pays no JSON column cost.
"""
from .archive import Account, Conversation, EarlyRecall, Job, KfCursor, Message, Outbox
from .account_status import AccountStatus
from .audit import AuditEntry
from .base import Base, BigId
from .bots import BotOutcome, BrandWord, FaqRow, KeywordRule
from .config_data import RoutingRule, Setting
from .customers import Customer, CustomerTag, Identity, Merge, Tag, TagGroup, TagRemoval
from .people import LoginSession, SkillGroup, User
from .scale import PlatformToken, TimerClaim  # noqa: F401
from .privacy import AccountSecret, ErasureRecord, LegalHold, PrivacyState, PurgeRun, RetentionPolicy  # noqa: F401
from .search import SearchCursor, Watch, WatchHit
from .service import AgentEvent, AgentStream, ServiceSession, SessionEvent
from .tickets import Ticket, TicketEvent, TicketRule, TicketType  # noqa: F401
from .supervisor import Alert, AlertEvent, QualityHit, QualityRuleRow, SlaRuleRow  # noqa: F401

__all__ = ["AccountStatus", "AuditEntry", "Customer", "CustomerTag", "Identity", "Merge", "Tag", "TagGroup", "TagRemoval", "BotOutcome", "BrandWord", "FaqRow", "KeywordRule", "Account", "AgentEvent", "AgentStream", "Base", "BigId", "Conversation", "EarlyRecall", "Job", "KfCursor",
           "LoginSession", "Message", "Outbox", "RoutingRule", "Setting", "ServiceSession", "SessionEvent", "SkillGroup", "User"]
