"""Types of the compiled core (native/src/python.rs); `etl.core.decode` is its only user."""

class CopyData:
    """Binary COPY tuples, lent through the buffer protocol (``memoryview(data)``)."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

def decode_batch(
    messages: list[tuple[int, int, int | None, bytes | None]], latest_allowed_us: int, /
) -> tuple[
    CopyData,
    int,
    int,
    int,
    int,
    list[tuple[int, str]],
    list[tuple[int, str, str, str | None]],
    list[str],
]: ...
def decode_one(
    value: bytes | None, latest_allowed_us: int, /
) -> (
    tuple[int, int, bool, str, bytes, int, str | None, str | None] | tuple[str, str, str | None]
): ...
