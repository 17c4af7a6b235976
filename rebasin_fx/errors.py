"""The one exception type the library raises on purpose."""

from __future__ import annotations


class RebasinError(Exception):
    """Something the user gave us is wrong or unsupported.

    Messages say what was wrong, where (parameter, graph node, source line)
    and what to do about it.
    """


def node_where(node) -> str:
    """Describe an fx node for an error message: its name, target and source line."""
    if node is None:
        return "<no node>"
    target = getattr(node.target, "__name__", None) or str(node.target)
    where = f"node '{node.name}' ({target})"
    trace = node.meta.get("stack_trace") if hasattr(node, "meta") else None
    if trace:
        lines = [ln.strip() for ln in trace.strip().splitlines() if ln.strip()]
        files = [ln for ln in lines if ln.startswith("File ")]
        # the innermost frame outside torch itself is the user's line
        user = [ln for ln in files if "/torch/" not in ln]
        if user or files:
            where += " at " + (user or files)[-1][5:]
    return where
