"""The one error the order adapters raise for bad input."""
from __future__ import annotations


class PayloadError(ValueError):
    """A payload field is missing, has the wrong type or an unusable value.

    ``field`` is a dotted path relative to the platform's order object, e.g. ``orders.order[0].payment``
    (Taobao ``trade``), ``itemInfoList[1].itemTotal`` (JD ``orderInfo``), ``[0].data`` (a Douyin push
    array) or a CSV column name; ``$`` means the payload as a whole. ``line`` is the CSV line, if any.
    """

    def __init__(self, field: str, message: str, line: int | None = None):
        self.field = field
        self.message = message
        self.line = line
        where = f"line {line}, {field}" if line is not None else field
        super().__init__(f"{where}: {message}")
