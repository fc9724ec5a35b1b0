"""Work orders (工单): tickets turned from conversations, routed to groups, with a status flow, a history
and overdue alerts. Pure rules in ``rules.py``, storage and events in ``service.py``, HTTP in ``api.py``."""
