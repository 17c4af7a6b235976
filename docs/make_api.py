"""Write docs/api.md from the docstrings of every public name: python docs/make_api.py"""

from __future__ import annotations

import inspect
import textwrap
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def render() -> str:
    sys.path.insert(0, str(HERE.parent))
    import rebasin_fx as rfx

    out = ["# API reference", "",
           "Generated from the docstrings by `python docs/make_api.py` (a test checks it is current).",
           "Everything below is importable as `rfx.NAME` after `import rebasin_fx as rfx`.", ""]
    for name in rfx.__all__:
        obj = getattr(rfx, name)
        kind = "class" if inspect.isclass(obj) else "function"
        try:
            sig = str(inspect.signature(obj))
        except (TypeError, ValueError):
            sig = "(...)"
        if kind == "class" and issubclass(obj, BaseException):
            sig = ""
        out += [f"## `{name}`", "", f"```text\n{kind} {name}{sig}\n```", ""]
        doc = inspect.getdoc(obj) or ""
        if doc:
            text, _, example = doc.partition("Example:\n")
            out += [text.strip(), ""]
            if example:
                out += ["Example:", "", "```pycon", textwrap.dedent(example).strip(), "```", ""]
        if kind == "class":
            for meth, fn in inspect.getmembers(obj, inspect.isfunction):
                if meth.startswith("_") or meth not in obj.__dict__:
                    continue
                first = (inspect.getdoc(fn) or "").split("\n\n")[0]
                out += [f"- `{name}.{meth}{inspect.signature(fn)}`" + (f": {first}" if first else "")]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    (HERE / "api.md").write_text(render())
    print("wrote", HERE / "api.md")
