"""`with` for everything the harness starts: servers, the fault proxy, the service, Prometheus."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Lifecycle(ABC):
    """Started on entering a `with` block and closed on leaving it, also when starting fails half-way:
    a half-started server already holds a port, processes or a temporary directory."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def close(self) -> None:
        """Stop and remove everything the object holds; safe in any state, including half-started."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
